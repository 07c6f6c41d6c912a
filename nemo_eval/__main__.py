"""``python -m nemo_eval`` is the same as the ``nemo-eval`` console script."""

from nemo_eval.cli import main

raise SystemExit(main())
