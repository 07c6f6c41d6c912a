"""``nemo-eval view [DIR ...]``: serve the results viewer over output directories.

Prints the URL and serves until interrupted. Read-only: nothing is written under the served
directories. Binds to 127.0.0.1 unless ``--host`` says otherwise.
"""

from __future__ import annotations

import errno
import sys
from pathlib import Path
from typing import Optional, Sequence

from nemo_eval.arguments import Parser
from nemo_eval.errors import UserError, run_main

PROG = "nemo-eval view"


def main(argv: Optional[Sequence[str]] = None) -> int:
    parser = Parser(prog=PROG, description="Browse runs in a web browser: metrics with confidence intervals, "
                                           "samples filtered by verdict, one sample with its prompt and extracted "
                                           "answer, comparisons of two runs, trends over checkpoints. Read-only.")
    parser.add_argument("dirs", nargs="*", type=Path, default=[Path(".")], metavar="DIR",
                        help="output directories, or folders holding many (default: the current directory)")
    parser.add_argument("--port", type=int, default=8000, help="port to serve on (default 8000; 0: any free port)")
    parser.add_argument("--host", default="127.0.0.1",
                        help="address to bind (default 127.0.0.1: this machine only; 0.0.0.0 shares the results "
                             "with your network)")
    args = parser.parse_args(argv)
    for directory in args.dirs:
        if not directory.exists():
            raise UserError(f"{directory} does not exist; give output directories (or folders holding them)")
        if not directory.is_dir():
            raise UserError(f"{directory} is not a directory; give output directories (or folders holding them)")
    if not 0 <= args.port <= 65535:
        raise UserError(f"--port {args.port} is not a port number (0-65535; 0 picks a free one)")

    import logging

    from werkzeug.serving import make_server

    logging.getLogger("werkzeug").setLevel(logging.WARNING)  # no line per request

    from nemo_eval.viewer.app import create_app

    app = create_app(list(args.dirs), host=args.host, port=args.port or None)
    try:
        server = make_server(args.host, args.port, app, threaded=True)
    except OSError as exc:
        if exc.errno == errno.EADDRINUSE:
            raise UserError(f"port {args.port} on {args.host} is in use; choose another with --port "
                            "(--port 0 picks a free one)") from None
        raise UserError(f"cannot serve on {args.host}:{args.port}: {exc.strerror or exc}") from None
    port = server.socket.getsockname()[1]
    app.config["VIEWER_PORT"] = port
    host = f"[{args.host}]" if ":" in args.host else args.host
    shown = "127.0.0.1" if args.host in ("0.0.0.0", "::") else host
    runs = len(app.config["CATALOG"].runs())
    print(f"nemo-eval view: {runs} run(s) under {', '.join(str(d) for d in args.dirs)}", file=sys.stderr)
    print(f"http://{shown}:{port}/", flush=True)
    try:
        server.serve_forever()
    except KeyboardInterrupt:
        pass
    finally:
        server.server_close()
    return 0


if __name__ == "__main__":
    raise SystemExit(run_main(PROG, main))
