"""The server-type record and its registry."""

from __future__ import annotations

import shlex
from dataclasses import dataclass
from typing import Callable, Optional

from nemo_eval.registry import Registry


@dataclass(frozen=True)
class LaunchArgs:
    """What every launch command is built from."""

    model: str
    port: int
    gpus: int = 0
    nodes: int = 1
    seed: Optional[int] = None
    extra_args: str = ""
    python: str = "python3"  # interpreter for Python-module servers; local launches pass sys.executable

    def extra(self) -> list[str]:
        return shlex.split(self.extra_args)


@dataclass(frozen=True)
class ServerType:
    """One kind of inference server.

    Attributes:
        name: Registry name (``--server_type``).
        description: One line for listings.
        command: Builds the launch command line; None for servers that are never launched (``openai``).
        health_path: Path answering 200 once the server can take requests.
        needs_gpu: Whether the server can only run with GPUs.
        default_model: Returns the model used when none is given, or None.
    """

    name: str
    description: str
    command: Optional[Callable[[LaunchArgs], list[str]]] = None
    health_path: str = "/health"
    needs_gpu: bool = True
    default_model: Optional[Callable[[], Optional[str]]] = None

    @property
    def launchable(self) -> bool:
        return self.command is not None

    def model_or_default(self, model: Optional[str]) -> Optional[str]:
        """``model``, else this server type's default model (None when it has neither)."""
        return model or (self.default_model() if self.default_model else None)


SERVERS: Registry[ServerType] = Registry("server type")


def get_server_type(name: str) -> ServerType:
    """The registered server type ``name``; UserError listing the known ones otherwise."""
    return SERVERS.get(name)
