"""Command-line flags, spelled one way: words joined by dashes (``--output-dir``, ``--data-dir``).

Every ``nemo-eval`` command builds its parser with :class:`Parser`. A flag declared with
underscores is registered and shown with dashes (``--output_dir`` -> ``--output-dir``; the
attribute stays ``args.output_dir``), and the underscore spelling of every flag is still accepted as
an alias (``--output_dir``, ``--data_dir``, ``--fail_under``), so commands written for earlier
releases keep working. ``++key=value`` settings are config keys, not flags: they keep their names.
"""

from __future__ import annotations

import argparse
import sys
from typing import Any, Optional, Sequence


def dashed(option: str) -> str:
    """``--output_dir`` -> ``--output-dir``; positional names and short options are left alone."""
    if option.startswith("--"):
        return "--" + option[2:].replace("_", "-")
    return option


class Parser(argparse.ArgumentParser):
    """An :class:`argparse.ArgumentParser` whose long flags are dashed, with underscores accepted too."""

    def add_argument(self, *names: Any, **kwargs: Any) -> argparse.Action:
        if names and all(isinstance(name, str) and name.startswith("-") for name in names):
            names = tuple(dict.fromkeys(dashed(name) for name in names))  # the attribute: args.output_dir
        return super().add_argument(*names, **kwargs)

    def _respelled(self, args: Sequence[str]) -> list[str]:
        """``--output_dir X`` -> ``--output-dir X`` for this parser's flags (nothing after ``--``)."""
        known = self._option_string_actions
        out: list[str] = []
        for position, arg in enumerate(args):
            if arg == "--":
                return out + list(args[position:])
            if arg.startswith("--") and "_" in arg.split("=", 1)[0]:
                name, sep, value = arg.partition("=")
                if name not in known and dashed(name) in known:
                    arg = dashed(name) + sep + value
            out.append(arg)
        return out

    def parse_known_args(self, args: Optional[Sequence[str]] = None,  # type: ignore[override]
                         namespace: Optional[argparse.Namespace] = None) -> tuple[argparse.Namespace, list[str]]:
        return super().parse_known_args(self._respelled(sys.argv[1:] if args is None else list(args)), namespace)


def benchmark_word(words: Sequence[str]) -> list[str]:
    """The ``++key=value`` settings of a command that names one benchmark, with a bare word (``gsm8k``)
    turned into ``++benchmark=gsm8k``: ``show-prompt`` and ``generate`` take the benchmark either way.

    Raises:
        UserError: More than one bare word, or the benchmark named both ways with different names.
    """
    from nemo_eval.errors import UserError

    bare = [w for w in words if "=" not in w and not w.startswith(("+", "-", "~"))]
    settings = [w for w in words if w not in bare]
    if len(bare) > 1:
        raise UserError(f"name one benchmark (got {', '.join(map(repr, bare))}); settings are given as ++key=value")
    if bare:
        named = [w.split("=", 1)[1] for w in settings if w.lstrip("+").split("=", 1)[0] == "benchmark"]
        if any(name != bare[0] for name in named):
            raise UserError(f"the benchmark is named twice ({bare[0]!r} and ++benchmark={named[0]}); name it once")
        settings = [f"++benchmark={bare[0]}"] + settings
    return settings
