"""Process entry point for ``server_type=nemo``: ``nemo.collections.llm.api.deploy`` on a chosen port.

Runs inside a NeMo container (or with ``nemo-eval[nemo]``); the model is served as
``triton_model`` on ``/v1/completions`` and ``/v1/chat/completions``.
"""

from __future__ import annotations

import argparse
import sys


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="nemo_serve", description="Serve a NeMo 2.0 checkpoint with an OpenAI-compatible API.")
    parser.add_argument("--checkpoint", required=True, help="NeMo 2.0 checkpoint directory")
    parser.add_argument("--port", type=int, required=True, help="OpenAI-compatible API port")
    parser.add_argument("--gpus", type=int, default=1, help="GPUs per node (tensor parallel size)")
    parser.add_argument("--nodes", type=int, default=1, help="nodes (pipeline parallel size)")
    parser.add_argument("--triton_port", type=int, default=None, help="internal Triton HTTP port (default: port + 1)")
    args = parser.parse_args(argv)
    try:
        from nemo.collections.llm.api import deploy
    except ImportError:
        print("nemo_serve: error: NeMo is not installed here; use the NeMo container or pip install 'nemo-eval[nemo]'",
              file=sys.stderr)
        return 2
    deploy(nemo_checkpoint=args.checkpoint, num_gpus=args.gpus, num_nodes=args.nodes, fastapi_port=args.port,
           triton_http_port=args.triton_port or args.port + 1, tensor_parallelism_size=args.gpus,
           pipeline_parallelism_size=args.nodes)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
