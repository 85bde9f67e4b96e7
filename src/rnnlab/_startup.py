"""A Ctrl-C while ``rnnlab`` (the command) is still importing its modules: one line and exit code 130.

The command line turns a Ctrl-C into ``rnnlab COMMAND: interrupted`` (:mod:`rnnlab.cli`), but the
console script and ``python -m rnnlab`` import the whole package before :func:`rnnlab.cli.main` runs,
and a ``KeyboardInterrupt`` raised by those imports would end in a traceback. The package's imports
call :func:`interrupted_while_starting` on one: for the command it prints the line and exits 130
(``SystemExit`` passes through the import machinery without a traceback); for a program that merely
imports rnnlab it returns, and the program gets its ``KeyboardInterrupt`` as usual.
"""

from __future__ import annotations

import sys
from pathlib import Path

__all__ = ["interrupted_while_starting", "launched_as_command"]


def launched_as_command() -> bool:
    """Whether this process is the ``rnnlab`` command (the console script, or ``python -m rnnlab``)."""
    argv = list(getattr(sys, "orig_argv", ()))
    for i, arg in enumerate(argv[:-1]):
        if arg == "-m":
            return argv[i + 1] in ("rnnlab", "rnnlab.cli", "rnnlab.__main__")
    return bool(sys.argv) and Path(sys.argv[0]).stem == "rnnlab"


def interrupted_while_starting() -> None:
    """Exit with code 130 and one line on stderr when the command is starting; return otherwise."""
    if launched_as_command():
        print("rnnlab: interrupted while starting", file=sys.stderr, flush=True)
        raise SystemExit(130)
