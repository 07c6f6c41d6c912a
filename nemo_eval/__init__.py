"""nemo-eval: reproducible evaluation of large language models.

Stages live in sub-packages and import one way only:
datasets -> prompts -> inference -> evaluation -> metrics -> pipeline.
"""

__version__ = "0.1.0"
