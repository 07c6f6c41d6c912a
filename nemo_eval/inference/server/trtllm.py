"""``trtllm``: TensorRT-LLM's ``trtllm-serve`` (``pip install 'nemo-eval[trtllm]'`` or its container)."""

from nemo_eval.inference.server.base import SERVERS, LaunchArgs, ServerType


def command(args: LaunchArgs) -> list[str]:
    return ["trtllm-serve", args.model, "--host", "0.0.0.0", "--port", str(args.port),
            "--tp_size", str(max(args.gpus, 1)), "--pp_size", str(max(args.nodes, 1))] + args.extra()


SERVERS.register("trtllm", ServerType(name="trtllm", description="TensorRT-LLM trtllm-serve", command=command))
