"""``vllm``: vLLM's OpenAI-compatible server (``pip install 'nemo-eval[vllm]'`` or its container)."""

from nemo_eval.inference.server.base import SERVERS, LaunchArgs, ServerType


def command(args: LaunchArgs) -> list[str]:
    cmd = [args.python, "-m", "vllm.entrypoints.openai.api_server", "--model", args.model,
           "--served-model-name", args.model, "--host", "0.0.0.0", "--port", str(args.port),
           "--tensor-parallel-size", str(max(args.gpus, 1)), "--pipeline-parallel-size", str(max(args.nodes, 1)),
           "--trust-remote-code"]
    if args.seed is not None:
        cmd += ["--seed", str(args.seed)]
    return cmd + args.extra()


SERVERS.register("vllm", ServerType(name="vllm", description="vLLM OpenAI-compatible server", command=command))
