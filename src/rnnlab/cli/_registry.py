"""The command registry: :class:`Command`, :data:`COMMANDS` and the ``@command`` decorator that fills it.

Each command module (:mod:`rnnlab.cli.run`, :mod:`rnnlab.cli.demo`, ...) registers its commands with
``@command`` when :mod:`rnnlab.cli` imports it; :func:`rnnlab.cli.build_parser` adds one sub-command per
entry, in registration order. Also :class:`Interrupted`, the Ctrl-C a command re-raises to tell the user
how to carry on.
"""

from __future__ import annotations

import argparse
from collections.abc import Callable
from dataclasses import dataclass

__all__ = ["Command", "COMMANDS", "command", "Interrupted"]


@dataclass(frozen=True)
class Command:
    name: str
    help: str
    configure: Callable[[argparse.ArgumentParser], None]
    run: Callable[[argparse.Namespace], int]


COMMANDS: dict[str, Command] = {}


def command(name: str, help: str, configure: Callable[[argparse.ArgumentParser], None]):
    """Register the decorated ``run(args) -> int`` as the sub-command ``name``."""
    def register(run: Callable[[argparse.Namespace], int]):
        if name in COMMANDS:
            raise ValueError(f"command {name!r} is already registered")
        COMMANDS[name] = Command(name, help, configure, run)
        return run
    return register


class Interrupted(KeyboardInterrupt):
    """A Ctrl-C whose message says how to carry on; ``main`` prints ``rnnlab CMD: interrupted; MESSAGE`` (130).
    ``what`` and ``code`` replace "interrupted" and 130 (a training run stopped by SIGTERM: "stopped by
    SIGTERM at step N", 143, as a shell reports a process SIGTERM ended)."""

    def __init__(self, message: str, *, what: str = "interrupted", code: int = 130):
        super().__init__(message)
        self.what = what
        self.code = code
