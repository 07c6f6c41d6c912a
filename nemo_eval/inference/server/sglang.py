"""``sglang``: SGLang's server (``pip install 'nemo-eval[sglang]'`` or its container)."""

from nemo_eval.inference.server.base import SERVERS, LaunchArgs, ServerType


def command(args: LaunchArgs) -> list[str]:
    cmd = [args.python, "-m", "sglang.launch_server", "--model-path", args.model, "--served-model-name", args.model,
           "--host", "0.0.0.0", "--port", str(args.port), "--tp", str(max(args.gpus, 1) * max(args.nodes, 1)),
           "--trust-remote-code"]
    if args.nodes > 1:
        cmd += ["--nnodes", str(args.nodes)]
    if args.seed is not None:
        cmd += ["--random-seed", str(args.seed)]
    return cmd + args.extra()


SERVERS.register("sglang", ServerType(name="sglang", description="SGLang server", command=command))
