"""One registry mechanism for every extensible kind of thing.

Benchmarks, prompt configs, model templates, server types, graders and metrics are each kept
in a :class:`Registry`: a name -> object mapping that can also fill itself lazily (for things
discovered on disk) and that answers an unknown name with a :class:`UserError` listing the
known names.
"""

from __future__ import annotations

import difflib
from typing import Callable, Generic, Iterator, TypeVar

from nemo_eval.errors import UserError

T = TypeVar("T")


class Registry(Generic[T]):
    """Named objects of one kind.

    Args:
        kind: What the registry holds, used in messages ("benchmark", "server type").
        discover: Optional callable returning ``{name: object}``, run once on first lookup;
            used for entries defined by folders or files rather than by code.
        hint: Optional text appended to the unknown-name error (how to add one).
    """

    def __init__(self, kind: str, discover: Callable[[], dict[str, T]] | None = None,
                 hint: str = "") -> None:
        self.kind = kind
        self._entries: dict[str, T] = {}
        self._discover = discover
        self._hint = hint

    def _ensure_discovered(self) -> None:
        if self._discover is not None:
            discover, self._discover = self._discover, None
            for name, obj in discover().items():
                self._entries.setdefault(name, obj)

    def register(self, name: str, obj: T | None = None):
        """Register ``obj`` under ``name``; without ``obj``, return a decorator."""
        def add(item: T) -> T:
            if name in self._entries and self._entries[name] is not item:
                raise ValueError(f"{self.kind} {name!r} is registered twice")
            self._entries[name] = item
            return item

        return add if obj is None else add(obj)

    def get(self, name: str) -> T:
        """Return the entry called ``name`` or raise a UserError listing the known ones."""
        self._ensure_discovered()
        try:
            return self._entries[name]
        except KeyError:
            known = self.names()
            close = difflib.get_close_matches(name, known, n=1)
            guess = f" Did you mean {close[0]!r}?" if close else ""
            hint = f" {self._hint}" if self._hint else ""
            raise UserError(f"unknown {self.kind} {name!r}.{guess} Known: {', '.join(known)}.{hint}") from None

    def names(self) -> list[str]:
        """All registered names, sorted."""
        self._ensure_discovered()
        return sorted(self._entries)

    def __contains__(self, name: object) -> bool:
        self._ensure_discovered()
        return name in self._entries

    def __iter__(self) -> Iterator[str]:
        return iter(self.names())
