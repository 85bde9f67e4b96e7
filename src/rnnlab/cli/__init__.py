"""The command line: ``rnnlab <command> [options]`` (also ``python -m rnnlab``).

Thin by design: each command parses its options, calls the library, prints, and returns an exit
code. ``main(argv)`` never calls ``sys.exit`` itself, so tests run it in-process.

Exit codes: 0 success; 1 the command failed (bad or missing data, a diverged run, an unusable run
directory, a failed check), with the reason on stderr; 2 usage or configuration error (argparse's
convention: bad options, an invalid config file or ``--set`` override); 130 interrupted (Ctrl-C; a
training run continues with ``--resume``); 141 the reader of the output went away (``| head``), quietly.
:func:`main` is the one place that turns exceptions into these codes, by the exception's type.

Commands around a run configuration (:mod:`rnnlab.cli.run`; see :mod:`rnnlab.lab.config` and
:mod:`rnnlab.lab.tasks`)::

    rnnlab train CONFIG.toml [--set section.key=value ...] [--run-dir DIR] [--data-dir DIR] [--resume]
    rnnlab evaluate RUN [--split val|test | --path FILE] [--data-dir DIR]
    rnnlab generate RUN --prime TEXT [--length N --temperature T --top-k K --top-p P --greedy --seed S --stop TEXT]
    rnnlab predict RUN (INPUT... | --file FILE [--out PREDICTIONS.csv|.jsonl]) [--format table|json]
    rnnlab summary CONFIG.toml [--set ...] [--data-dir DIR]

Gradient flow (:mod:`rnnlab.cli.diagnose`, :mod:`rnnlab.cli.experiment`, :mod:`rnnlab.cli.inspect`; see
:mod:`rnnlab.lab.diagnostics`, :mod:`rnnlab.lab.experiments` and :mod:`rnnlab.lab.viewer`)::

    rnnlab diagnose RUN [--split val|test] [--batch-size N] [--json]
    rnnlab experiment NAME [--full] [--out DIR] [--seed S];  rnnlab experiment --list
    rnnlab inspect RUN --text TEXT [--layer N --quantity h|c|i|f|g|o|r|z|n --unit N --out PAGE.html]

Also ``rnnlab demo`` (:mod:`rnnlab.cli.demo`) and ``rnnlab gradcheck`` (:mod:`rnnlab.cli.gradcheck`).

Adding a command: in a module of this package, write ``configure(parser)`` (adds the options, with
the helpers of :mod:`rnnlab.cli._args`) and ``run(args) -> int``, register them with
``@command("name", "one-line help", configure)`` on ``run`` (from :mod:`rnnlab.cli._registry`), and
import the module below. Commands raise for failures; :func:`main` maps the exception to the exit code.
"""

from __future__ import annotations

import argparse
import sys

from rnnlab._errors import TrainingDiverged
from rnnlab.cli._registry import COMMANDS, Command, Interrupted, command
from rnnlab.data.datasets import DatasetError
from rnnlab.io.files import ModelFileError
from rnnlab.lab.config import ConfigError

# Each command module registers its commands on import; `rnnlab --help` lists them in this order.
# isort: off
from rnnlab.cli import demo, gradcheck, run, diagnose, experiment, inspect  # noqa: F401
# isort: on

__all__ = ["main", "build_parser", "command", "COMMANDS", "Command"]


def _exit_code(exc: BaseException) -> int | None:
    """The exit code of an expected failure (its message is the whole story), None for a bug."""
    from rnnlab.lab.experiments import PlotDependencyError
    from rnnlab.lab.tasks import RunError

    if isinstance(exc, ConfigError):
        return 2
    if isinstance(exc, (DatasetError, RunError, TrainingDiverged, ModelFileError, PlotDependencyError,
                        FileExistsError)):
        return 1
    return None


def build_parser() -> argparse.ArgumentParser:
    from rnnlab._version import __version__

    parser = argparse.ArgumentParser(prog="rnnlab",
                                     description="Recurrent neural networks in NumPy with hand-written BPTT.")
    parser.add_argument("--version", action="version", version=f"rnnlab {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    for cmd in COMMANDS.values():
        p = sub.add_parser(cmd.name, help=cmd.help, description=cmd.help)
        cmd.configure(p)
        p.set_defaults(run=cmd.run)
    return parser


def _silence_stdout() -> None:
    """Point stdout at the null device, so the interpreter's final flush does not fail again."""
    import os

    try:
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
    except (OSError, ValueError, AttributeError):  # not a real file (e.g. captured by a test)
        pass


def main(argv: list[str] | None = None) -> int:
    """Run ``rnnlab`` with ``argv`` (``sys.argv[1:]`` when None) and return the exit code."""
    parser = build_parser()
    try:
        args = parser.parse_args(argv)
    except SystemExit as exc:  # --help, --version (0) and usage errors (2)
        return exc.code if isinstance(exc.code, int) else 2
    if args.command is None:
        parser.print_usage(sys.stderr)
        print("rnnlab: error: a command is required: " + ", ".join(COMMANDS), file=sys.stderr)
        return 2
    try:
        code = args.run(args)
        sys.stdout.flush()  # a reader that went away (`rnnlab predict ... | head`) shows up here, not at exit
        return code
    except BrokenPipeError:
        _silence_stdout()
        return 141  # 128 + SIGPIPE, as a shell reports a command whose reader closed the pipe
    except KeyboardInterrupt as exc:
        hint = f"; {exc}" if isinstance(exc, Interrupted) else ""
        print(f"rnnlab {args.command}: interrupted{hint}", file=sys.stderr)
        return 130
    except Exception as exc:
        code = _exit_code(exc)
        if code is None:
            raise
        print(f"rnnlab {args.command}: error: {exc}", file=sys.stderr)
        return code


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
