"""``python3 -m nemo_eval_sandbox``: run the sandbox service (see ``server.py``)."""

from nemo_eval_sandbox.server import main

raise SystemExit(main())
