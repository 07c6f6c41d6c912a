"""Inference server types: how each is launched and how its health is checked.

One small module per type registers a :class:`ServerType` in :data:`SERVERS`; adding a server
type is adding one module here (and its import below).
"""

from nemo_eval.inference.server.base import SERVERS, ServerType, get_server_type
from nemo_eval.inference.server import llamacpp, nemo, openai, sglang, trtllm, vllm  # noqa: F401  (registration)

__all__ = ["SERVERS", "ServerType", "get_server_type"]
