"""``openai``: any existing OpenAI-compatible endpoint (OpenAI, NIM, a server you started). Never launched."""

from nemo_eval.inference.server.base import SERVERS, ServerType

SERVERS.register("openai", ServerType(
    name="openai", description="an existing OpenAI-compatible endpoint (give its base URL)", needs_gpu=False))
