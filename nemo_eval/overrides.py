"""``++key=value`` overrides (Hydra grammar) into a typed config dataclass, and ``--help`` from it.

Config dataclasses document each field with ``field(metadata={"help": ...})``; the same text
is shown by ``--help``. Overrides are parsed with Hydra's override grammar, so lists, dicts and
quoting work as in any Hydra app (``++inference.stop='["Q:","A:"]'``); ``++key``, ``+key`` and ``key``
all set a key. Unknown keys (which Hydra would silently accept with ``++``) and values of the wrong
type are one-line errors.
"""

from __future__ import annotations

import re

import dataclasses
import functools
import typing
from typing import Any, Sequence, TypeVar

from omegaconf import OmegaConf
from omegaconf.errors import OmegaConfBaseException

from nemo_eval.errors import UserError

C = TypeVar("C")


@functools.lru_cache(maxsize=None)
def _type_hints(owner: type) -> dict[str, Any]:
    """The resolved annotations of a config class (resolving them is slow: once per class)."""
    return typing.get_type_hints(owner)


def _nested_dataclass(f: dataclasses.Field, owner: type) -> type | None:
    hint = _type_hints(owner).get(f.name)
    return hint if isinstance(hint, type) and dataclasses.is_dataclass(hint) else None


def _is_mapping_field(f: dataclasses.Field, owner: type) -> bool:
    hint = _type_hints(owner).get(f.name)
    return typing.get_origin(hint) in (dict, typing.Dict) or hint in (dict, typing.Dict)


def flat_fields(cls: type, prefix: str = "") -> list[tuple[str, dataclasses.Field, type]]:
    """Every leaf field as (dotted name, field, owner class)."""
    out = []
    for f in dataclasses.fields(cls):
        nested = _nested_dataclass(f, cls)
        if nested is not None:
            out += flat_fields(nested, f"{prefix}{f.name}.")
        else:
            out.append((prefix + f.name, f, cls))
    return out


def _default_text(f: dataclasses.Field) -> str:
    if f.default is not dataclasses.MISSING:
        return "null" if f.default is None else str(f.default).lower() if isinstance(f.default, bool) else repr(f.default)
    if f.default_factory is not dataclasses.MISSING:  # type: ignore[misc]
        return repr(f.default_factory())  # type: ignore[misc]
    return "required"


def help_lines(cls: type) -> list[str]:
    """One line per field: ``++name=<default>  help``."""
    entries = [(f"++{name}={_default_text(f)}", f.metadata.get("help", "")) for name, f, _ in flat_fields(cls)]
    width = min(max(len(key) for key, _ in entries), 44)
    return [f"  {key:<{width}}  {text}" for key, text in entries]


def _check_keys(cls: type, overrides: Sequence[str]) -> None:
    leaves = flat_fields(cls)
    known = {name for name, _, _ in leaves}
    mappings = [name + "." for name, f, owner in leaves if _is_mapping_field(f, owner)]
    for raw in overrides:
        key = raw.lstrip("+~").split("=", 1)[0].strip()
        if key in known or any(key.startswith(prefix) for prefix in mappings):
            continue
        import difflib

        close = difflib.get_close_matches(key, sorted(known), n=1)
        guess = f"did you mean {close[0]}? " if close else ""
        raise UserError(f"unknown setting {key!r} in {raw!r}; {guess}see --help for the settings")


def parse_overrides(cls: type[C], overrides: Sequence[str]) -> C:
    """The dataclass defaults with Hydra overrides applied (``++a.b=v``, ``+a=v`` or ``a=v``: all set ``a``).

    Values use Hydra's override grammar (lists, dicts, quoting, ``null``); they are applied to the
    structured config directly, without Hydra's composition (which costs a tenth of a second and
    refuses ``+key`` for keys that exist, and every key here exists).
    """
    for raw in overrides:
        if raw.startswith("~"):
            raise UserError(f"{raw!r}: settings cannot be deleted; set them instead (++key=value)")
        if "=" not in raw or not raw.lstrip("+").split("=", 1)[0]:
            raise UserError(f"override {raw!r} must look like ++key=value")
    _check_keys(cls, overrides)
    config = OmegaConf.structured(cls)
    current = ""
    plain = [_plain_override(raw) for raw in overrides]
    try:
        if all(item is not None for item in plain):   # nothing needs Hydra's grammar (or its import)
            for raw, (key, value) in zip(overrides, plain):  # type: ignore[misc]
                current = f"{raw} "
                OmegaConf.update(config, key, value, merge=True, force_add=True)
            return OmegaConf.to_object(config)  # type: ignore[return-value]
        from hydra.core.override_parser.overrides_parser import OverridesParser

        for raw, override in zip(overrides, OverridesParser.create().parse_overrides(list(overrides))):
            current = f"{raw} "
            OmegaConf.update(config, override.key_or_group, override.value(), merge=True, force_add=True)
        return OmegaConf.to_object(config)  # type: ignore[return-value]
    except Exception as exc:
        if not isinstance(exc, OmegaConfBaseException) and type(exc).__module__.split(".")[0] != "hydra":
            raise
        detail = str(exc.__cause__ or "").strip().splitlines()
        message = str(exc).strip().splitlines()[0] + (f": {detail[0]}" if detail else "")
        raise UserError(f"bad override {current}({message}); see --help for the settings and their types") from None


_INTEGER = re.compile(r"-?(?:0|[1-9][0-9]*)")
_DECIMAL = re.compile(r"-?[0-9]+\.[0-9]+")
_WORD = re.compile(r"[A-Za-z/.~@:][A-Za-z0-9_./:@+~-]*")
_HYDRA_WORDS = {"inf", "+inf", "-inf", "nan"}


def _plain_override(raw: str) -> tuple[str, Any] | None:
    """``(key, value)`` of an override whose value Hydra's grammar would read as this plain int, decimal,
    bool, null or word; None when it needs the grammar (quotes, lists, dicts, escapes, functions, ...)."""
    key, text = raw.lstrip("+").split("=", 1)
    key, text = key.strip(), text.strip()
    if _INTEGER.fullmatch(text):
        return key, int(text)
    if _DECIMAL.fullmatch(text):
        return key, float(text)
    if text.lower() in ("true", "false"):
        return key, text.lower() == "true"
    if text.lower() == "null":
        return key, None
    if _WORD.fullmatch(text) and text.lower() not in _HYDRA_WORDS:
        return key, text
    return None


def as_dict(config: Any) -> dict[str, Any]:
    """A config dataclass as a plain dict."""
    return dataclasses.asdict(config)


def hydra_value(text: str) -> str:
    """``text`` as a Hydra override value: as is when plain, else single-quoted with escapes."""
    if re.fullmatch(r"[A-Za-z0-9_./:@+~-]*", text):
        return text
    return "'" + text.replace("\\", "\\\\").replace("'", "\\'") + "'"
