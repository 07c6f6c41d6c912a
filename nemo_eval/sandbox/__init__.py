"""The code-execution sandbox: starting the service (``sandbox/`` at the repository root) and
talking to it (:class:`SandboxClient`). Shared infrastructure: generation (code execution during
generation) and evaluation (code tests, math grading) both use it.
"""

from nemo_eval.sandbox.client import SandboxClient, SandboxRefused, SandboxUnavailable, failed_result

__all__ = ["SandboxClient", "SandboxRefused", "SandboxUnavailable", "failed_result"]
