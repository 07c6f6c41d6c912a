"""Metrics over graded generations (the fifth stage)."""
