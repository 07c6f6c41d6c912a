"""The service's settings: per-execution limits and where its host-wide state lives.

Every field can be set from the environment as ``SANDBOX_<FIELD>`` (``SANDBOX_MEMORY_MB=2048``);
``nemo-eval sandbox start`` sets them from its flags.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, fields
from typing import Optional

LANGUAGES = {"python": ("main.py", ["{python}", "-u", "/tmp/main.py"]), "bash": ("main.sh", ["/bin/bash", "/tmp/main.sh"])}
PROGRAM_ENV = {"PATH": "/usr/local/bin:/usr/bin:/bin", "HOME": "/tmp", "LANG": "C.UTF-8",
               "PYTHONDONTWRITEBYTECODE": "1", "MALLOC_ARENA_MAX": "2"}


class SettingsError(ValueError):
    """A setting is out of range or malformed (one line, shown to the user)."""


@dataclass(frozen=True)
class Limits:
    """Per-execution limits and service settings.

    ``memory_mb`` caps the RAM an execution holds, its files included (they live in RAM); where
    cgroups are missing it falls back to an address-space limit. ``disk_mb`` caps the total size of
    what it writes (``/tmp`` and ``/dev/shm`` share it), one file included: reaching it ends as
    ``disk_limit`` whether the program wrote one file or many (there is no smaller per-file limit,
    which would fail a write with "File too large" and no status to say why).
    """

    max_timeout: float = 120.0
    memory_mb: int = 1024
    disk_mb: int = 256
    max_processes: int = 128
    max_open_files: int = 256
    max_output_chars: int = 20000
    workers: int = 4
    max_queue: int = 256
    python: str = "/usr/bin/python3"
    uid_base: int = 61000
    uid_count: int = 256
    state_dir: str = "/run/nemo-eval-sandbox"
    cgroup_root: Optional[str] = None  # docker mode: per-controller dirs delegated by the host

    def validate(self) -> "Limits":
        positive = ("max_timeout", "memory_mb", "disk_mb", "max_processes", "max_open_files",
                    "max_output_chars", "workers", "uid_count")
        for name in positive:
            if getattr(self, name) <= 0:
                raise SettingsError(f"{name.replace('_', '-')} must be positive (got {getattr(self, name)})")
        if self.max_queue < 0:
            raise SettingsError(f"max-queue must be 0 or more (got {self.max_queue})")
        if self.uid_base < 1000 or self.uid_base + self.uid_count > 2 ** 31:
            raise SettingsError(f"the sandbox uid range {self.uid_base}+{self.uid_count} must lie above 1000")
        if self.workers > self.uid_count:
            raise SettingsError(f"{self.workers} workers need as many uids, but the uid range has {self.uid_count} "
                                "(raise SANDBOX_UID_COUNT)")
        return self

    @property
    def uid_lock_dir(self) -> str:
        """One directory for every sandbox service on the host (both modes), so no uid is handed out twice."""
        return os.path.join(self.state_dir, "uid-locks")


def limits_from_env(environ: Optional[dict] = None) -> Limits:
    """A :class:`Limits` from ``SANDBOX_*`` variables (defaults for the rest)."""
    environ = os.environ if environ is None else environ
    values = {}
    for spec in fields(Limits):
        raw = environ.get(f"SANDBOX_{spec.name.upper()}")
        if raw is None:
            continue
        default = getattr(Limits(), spec.name)
        kind = str if default is None else type(default)
        try:
            values[spec.name] = kind(raw)
        except ValueError:
            raise SettingsError(f"SANDBOX_{spec.name.upper()}={raw!r} is not a valid {kind.__name__}") from None
    return Limits(**values).validate()
