"""Prompt configs, few-shot example sets and model templates (the second stage).

:func:`build_prompt` turns one benchmark item into chat messages (for chat endpoints) or, with
a model template, into one raw-text prompt (for base models and completion endpoints).
"""

from nemo_eval.prompts.builder import Prompt, PromptSettings, build_prompt, resolve_prompt
from nemo_eval.prompts.config import (EXAMPLE_SETS, MODEL_TEMPLATES, PROMPT_CONFIGS, ExampleSet, ModelTemplate,
                                      PromptConfig, load_prompt_config)

__all__ = ["EXAMPLE_SETS", "MODEL_TEMPLATES", "PROMPT_CONFIGS", "ExampleSet", "ModelTemplate", "Prompt",
           "PromptConfig", "PromptSettings", "build_prompt", "load_prompt_config", "resolve_prompt"]
