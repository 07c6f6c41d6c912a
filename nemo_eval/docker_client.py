"""The Docker engine as every stage uses it: one client, containers looked up, streamed, removed.

The docker-mode sandbox (``nemo_eval.sandbox``) and a launched server in a container
(``nemo_eval.inference.server.container``) go through these helpers; the ``docker`` SDK is imported
only here, and only when an engine is needed. Engine errors become one :class:`UserError` line.
"""

from __future__ import annotations

from typing import Any, Callable, Optional

from nemo_eval.errors import UserError

NO_ENGINE_HINT = "or use --mode bwrap"


def docker_client(hint: str = NO_ENGINE_HINT) -> Any:
    """A docker SDK client that answered a ping, or a one-line error saying how to get an engine."""
    try:
        import docker
        client = docker.from_env()
        client.ping()
        return client
    except Exception as exc:  # noqa: BLE001 - any failure here means "no usable engine"
        raise UserError(f"cannot talk to a Docker engine ({type(exc).__name__}); install and start one "
                        f"(apt-get install docker.io; dockerd){', ' + hint if hint else ''}") from None


def engine_error(what: str, exc: BaseException) -> UserError:
    """``cannot <what>: <the engine's message on one line>``."""
    return UserError(f"cannot {what}: {' '.join(str(exc).split())[:300]}")


def gpu_requests(count: int) -> list:
    """Device requests giving a container ``count`` GPUs (none for 0)."""
    if not count:
        return []
    import docker

    return [docker.types.DeviceRequest(count=count, capabilities=[["gpu"]])]


def existing_container(client: Any, name: str) -> Optional[Any]:
    """The container called ``name`` (or with that id), None when there is none."""
    try:
        return client.containers.get(name)
    except Exception:  # noqa: BLE001 - no such container
        return None


def is_running(container: Any) -> bool:
    """Whether ``container`` is created or running (False once it is gone)."""
    try:
        container.reload()
    except Exception:  # noqa: BLE001 - removed already
        return False
    return container.status in ("created", "running")


def exit_code(container: Any) -> Optional[int]:
    """The container's exit code once it exited, None while it runs."""
    container.reload()
    return container.attrs.get("State", {}).get("ExitCode", 0) if container.status == "exited" else None


def stream_logs(container: Any, sink: Callable[[bytes], None]) -> None:
    """Hand each chunk of the container's output to ``sink`` until it ends (run it in a thread)."""
    try:
        for chunk in container.logs(stream=True, follow=True):
            sink(chunk)
    except Exception:  # noqa: BLE001 - the container went away: nothing more to copy
        pass


def remove_container(container: Any, stop_timeout: Optional[float] = None) -> None:
    """Stop (with ``stop_timeout`` seconds of grace, when given) and remove ``container``; gone already is fine."""
    if stop_timeout is not None:
        try:
            container.stop(timeout=stop_timeout)
        except Exception:  # noqa: BLE001 - already stopped
            pass
    try:
        container.remove(force=True)
    except Exception:  # noqa: BLE001 - already removed
        pass
