"""Inference server types: how each is launched and how its health is checked.

One small module per type registers a :class:`ServerType` in :data:`SERVERS`: the built-in ones are
imported below, plugins register their own (docs/architecture.md). Help and error texts list the
names from the registry (:func:`server_types_help`).
"""

from nemo_eval.inference.server.base import SERVERS, ServerType, get_server_type
from nemo_eval.inference.server import llamacpp, nemo, openai, sglang, trtllm, vllm  # noqa: F401  (registration)

__all__ = ["SERVERS", "ServerType", "get_server_type", "launchable_server_types", "server_types_help"]


def launchable_server_types() -> list[str]:
    """Names of the server types nemo-eval can start (all but existing endpoints)."""
    return [name for name, server in SERVERS.items() if server.launchable]


def server_types_help() -> str:
    """``name (description)`` for every registered server type, for ``--help`` texts."""
    return "; ".join(f"{name} ({server.description})" for name, server in SERVERS.items())
