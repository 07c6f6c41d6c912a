"""Metrics over graded generations (the fifth stage): the metrics registry (families keyed by a
benchmark's ``metrics_type``), the estimators, tables, and the ``compute-metrics``,
``summarize-results`` and ``compare`` commands."""
