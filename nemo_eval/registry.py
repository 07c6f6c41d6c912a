"""One registry mechanism for every extensible kind of thing.

Benchmarks, server types, eval types (with their graders), metrics families and sandbox modes are
each kept in a :class:`Registry`: a name -> object mapping that can also fill itself lazily (for
things discovered on disk) and that answers an unknown name with a :class:`UserError` listing the
known names. Registries are the only source of names: help texts, error messages and config checks
ask them. The first lookup in any registry imports the plugins (:mod:`nemo_eval.plugins`), which
register their own entries with :meth:`Registry.register`.

An entry discovered on disk that cannot be loaded is a :class:`Broken` entry: it is reported once as
one warning line naming it, is left out of :meth:`Registry.names`, and using it raises its error.
"""

from __future__ import annotations

import difflib
import importlib
from dataclasses import dataclass
from typing import Any, Callable, Generic, Iterator, TypeVar, Union

from nemo_eval.errors import UserError
from nemo_eval.plugins import load_plugins, warn

T = TypeVar("T")


@dataclass(frozen=True)
class Broken:
    """A discovered entry that could not be loaded, and why (one line)."""

    reason: str


class Registry(Generic[T]):
    """Named objects of one kind.

    Args:
        kind: What the registry holds, used in messages ("benchmark", "server type").
        discover: Optional callable returning ``{name: object or Broken}``, run once on first lookup;
            used for entries defined by folders or files rather than by code.
        hint: Optional text appended to the unknown-name error (how to add one).
    """

    def __init__(self, kind: str, discover: Callable[[], dict[str, Union[T, Broken]]] | None = None,
                 hint: str = "") -> None:
        self.kind = kind
        self._entries: dict[str, T] = {}
        self._broken: dict[str, Broken] = {}
        self._discover = discover
        self._hint = hint

    def _ensure_discovered(self) -> None:
        load_plugins()
        if self._discover is not None:
            discover, self._discover = self._discover, None
            for name, obj in discover().items():
                if isinstance(obj, Broken):
                    if name not in self._entries:
                        self._broken[name] = obj
                        warn(f"{self.kind} {name} skipped: {obj.reason}")
                else:
                    self._entries.setdefault(name, obj)

    def register(self, name: str, obj: T | None = None):
        """Register ``obj`` under ``name``; without ``obj``, return a decorator."""
        def add(item: T) -> T:
            if name in self._entries and self._entries[name] is not item:
                raise ValueError(f"{self.kind} {name!r} is registered twice")
            self._entries[name] = item
            self._broken.pop(name, None)
            return item

        return add if obj is None else add(obj)

    def get(self, name: str) -> T:
        """Return the entry called ``name`` or raise a UserError (why it is broken, or the known names)."""
        self._ensure_discovered()
        try:
            return self._entries[name]
        except KeyError:
            pass
        if name in self._broken:
            raise UserError(f"{self.kind} {name} cannot be used: {self._broken[name].reason}")
        known = self.names()
        close = difflib.get_close_matches(name, known, n=1)
        guess = f" Did you mean {close[0]!r}?" if close else ""
        hint = f" {self._hint}" if self._hint else ""
        raise UserError(f"unknown {self.kind} {name!r}.{guess} Known: {', '.join(known)}.{hint}")

    def names(self) -> list[str]:
        """All registered (usable) names, sorted."""
        self._ensure_discovered()
        return sorted(self._entries)

    def items(self) -> list[tuple[str, T]]:
        """``(name, entry)`` pairs, sorted by name."""
        return [(name, self._entries[name]) for name in self.names()]

    def __contains__(self, name: object) -> bool:
        self._ensure_discovered()
        return name in self._entries

    def __iter__(self) -> Iterator[str]:
        return iter(self.names())


def resolve(ref: Union[str, Any]) -> Any:
    """``"package.module:attribute"`` -> that object (imported now); anything else is returned as is.

    Built-in entries name their implementation this way so that a registry upstream (datasets) can
    point at code downstream (evaluation) without importing it.
    """
    if not isinstance(ref, str):
        return ref
    module, _, attribute = ref.partition(":")
    return getattr(importlib.import_module(module), attribute)
