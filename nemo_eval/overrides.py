"""``++key=value`` overrides into a typed config dataclass, and ``--help`` text from its fields.

Config dataclasses document each field with ``field(metadata={"help": ...})``; the same text
is shown by ``--help``. Unknown keys and values of the wrong type are one-line errors.
"""

from __future__ import annotations

import dataclasses
from typing import Any, Sequence, TypeVar

from omegaconf import OmegaConf
from omegaconf.errors import OmegaConfBaseException

from nemo_eval.errors import UserError

C = TypeVar("C")


def _flat_fields(cls: type, prefix: str = "") -> list[tuple[str, dataclasses.Field]]:
    out = []
    for f in dataclasses.fields(cls):
        if dataclasses.is_dataclass(f.type) if isinstance(f.type, type) else False:
            out += _flat_fields(f.type, f"{prefix}{f.name}.")
        else:
            out.append((prefix + f.name, f))
    return out


def _default_text(f: dataclasses.Field) -> str:
    if f.default is not dataclasses.MISSING:
        return "null" if f.default is None else repr(f.default)
    if f.default_factory is not dataclasses.MISSING:  # type: ignore[misc]
        return repr(f.default_factory())  # type: ignore[misc]
    return "required"


def help_lines(cls: type) -> list[str]:
    """One line per field: ``++name=<default>  help``."""
    entries = [(f"++{name}={_default_text(f)}", f.metadata.get("help", "")) for name, f in _flat_fields(cls)]
    width = max(len(key) for key, _ in entries)
    return [f"  {key:<{width}}  {text}" for key, text in entries]


def parse_overrides(cls: type[C], overrides: Sequence[str]) -> C:
    """Apply ``++a.b=value`` (also ``+a=...`` or ``a=...``) overrides to the dataclass defaults."""
    dotlist = []
    for raw in overrides:
        item = raw.lstrip("+")
        if "=" not in item or not item.split("=", 1)[0]:
            raise UserError(f"override {raw!r} must look like ++key=value")
        dotlist.append(item)
    try:
        merged = OmegaConf.merge(OmegaConf.structured(cls), OmegaConf.from_dotlist(dotlist))
        return OmegaConf.to_object(merged)  # type: ignore[return-value]
    except OmegaConfBaseException as exc:
        message = str(exc).splitlines()[0]
        key = getattr(exc, "full_key", None)
        known = ", ".join(name for name, _ in _flat_fields(cls))
        raise UserError(f"bad override{f' for {key}' if key else ''}: {message} (known keys: {known})") from None


def as_dict(config: Any) -> dict[str, Any]:
    """A config dataclass as a plain dict."""
    return dataclasses.asdict(config)
