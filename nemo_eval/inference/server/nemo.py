"""``nemo``: a NeMo 2.0 checkpoint served in-framework behind NeMo's OpenAI-compatible FastAPI server.

NeMo's own example script hard-codes its port, so the launch goes through
:mod:`nemo_eval.inference.server.nemo_serve`, which calls ``nemo.collections.llm.api.deploy``.
"""

from nemo_eval.inference.server.base import SERVERS, LaunchArgs, ServerType


def command(args: LaunchArgs) -> list[str]:
    return [args.python, "-m", "nemo_eval.inference.server.nemo_serve", "--checkpoint", args.model,
            "--port", str(args.port), "--gpus", str(max(args.gpus, 1)), "--nodes", str(max(args.nodes, 1))] + args.extra()


SERVERS.register("nemo", ServerType(name="nemo", description="NeMo in-framework OpenAI-compatible deployment",
                                    command=command, health_path="/v1/triton_health"))
