"""The `snncc` console script: starts the CLI, and turns a Ctrl-C during its start-up
(importing torch takes a second or two) into one line and exit 130, not a traceback."""

from __future__ import annotations

import sys


def main() -> None:
    try:
        from snncc.cli import main as cli
    except KeyboardInterrupt:
        print("snncc: interrupted", file=sys.stderr)
        raise SystemExit(130) from None
    cli()
