"""Orchestration (the last stage): the ``eval`` launcher and its executors tie the other stages together.

``compute_metrics``, ``summarize_results`` and ``compare`` here are aliases of the commands in
:mod:`nemo_eval.metrics`, kept so that ``python -m nemo_eval.pipeline.<name>`` keeps working."""
