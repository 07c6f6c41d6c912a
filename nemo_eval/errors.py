"""User-facing errors and the wrapper every entry point runs under.

A :class:`UserError` is a mistake the user can fix (bad name, missing file, no network).
Entry points wrapped by :func:`run_main` print it as one line naming what is wrong and how
to fix it, with no traceback, and exit with :data:`EXIT_USER_ERROR`; so are file-system errors
that come from the environment (permission denied, read-only or full file system, a file where
a directory should be), since every write is atomic and leaves earlier files as they were.
Anything else is a bug and keeps its traceback.
"""

from __future__ import annotations

import errno
import signal
import sys
from typing import Callable, Iterable, Sequence

EXIT_USER_ERROR = 2
# file-system errors that are the environment's, not a bug: shown as one line naming the file
ENVIRONMENT_ERRNOS = {errno.EACCES, errno.EPERM, errno.EROFS, errno.ENOSPC, errno.EDQUOT, errno.ENOTDIR,
                      errno.EISDIR, errno.ENAMETOOLONG, errno.ELOOP}


class UserError(Exception):
    """An error caused by the user's input or environment; shown as one line."""


class Terminated(KeyboardInterrupt):
    """SIGTERM, raised like Ctrl-C so that every ``finally`` (server teardown, file close) runs."""


def _raise_terminated(signum: int, frame: object) -> None:
    raise Terminated()


def run_main(prog: str, main: Callable[[Sequence[str] | None], int | None],
             argv: Sequence[str] | None = None) -> int:
    """Run ``main(argv)``; turn :class:`UserError` and Ctrl-C into a one-line message.

    Args:
        prog: Program name used as the message prefix (for example ``nemo-eval prepare-data``).
        main: The entry point; returns an exit code or None for success.
        argv: Arguments without the program name; None means ``sys.argv[1:]``.

    Returns:
        The process exit code.
    """
    if signal.getsignal(signal.SIGTERM) is signal.SIG_DFL:
        signal.signal(signal.SIGTERM, _raise_terminated)
    try:
        code = main(argv)
    except UserError as exc:
        message = " ".join(str(exc).split("\n"))
        print(f"{prog}: error: {message}", file=sys.stderr)
        return EXIT_USER_ERROR
    except OSError as exc:
        if exc.errno not in ENVIRONMENT_ERRNOS or not exc.filename:
            raise
        print(f"{prog}: error: cannot use {exc.filename}: {exc.strerror}; check that path and its permissions "
              "(nothing written before was changed)", file=sys.stderr)
        return EXIT_USER_ERROR
    except KeyboardInterrupt as exc:
        print(f"{prog}: {'terminated' if isinstance(exc, Terminated) else 'interrupted'}", file=sys.stderr)
        return 143 if isinstance(exc, Terminated) else 130
    return int(code or 0)


def reject_unknown_keys(where: str, given: Iterable[str], allowed: Iterable[str]) -> None:
    """Raise a UserError naming the unknown keys of a config mapping and the allowed ones."""
    allowed = set(allowed)
    unknown = sorted(set(given) - allowed)
    if unknown:
        raise UserError(f"{where}: unknown key(s) {', '.join(unknown)}; allowed: {', '.join(sorted(allowed))}")
