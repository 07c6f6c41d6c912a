"""Answer extraction and grading (the fourth stage)."""
