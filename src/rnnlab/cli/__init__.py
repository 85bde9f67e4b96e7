"""The command line: ``rnnlab <command> [options]`` (also ``python -m rnnlab``).

Thin by design: each command parses its options, calls the library, prints, and returns an exit
code. ``main(argv)`` never calls ``sys.exit`` itself, so tests run it in-process.

Exit codes: 0 success; 1 the command failed (bad or missing data, a diverged run, an unusable run
directory, a file that cannot be read or written, a failed check), with the reason on stderr; 2 usage
or configuration error (argparse's convention: bad options, an invalid config file or ``--set``
override, an input the library refuses with a ``ValueError``/``TypeError``, an invalid
``RNNLAB_KERNELS``); 130 interrupted (Ctrl-C, also while the program starts; a training run continues
with ``--resume``); 141 the reader of the output went away (``| head``), quietly; 143 ``rnnlab train``
stopped by SIGTERM after a step, with a checkpoint there (``--resume`` continues exactly).
:func:`main` is the one place that turns exceptions into these codes, by the exception's type.

An expected failure is one line on stderr, ``rnnlab COMMAND: error: ...``, never a traceback; a
warning of the library (e.g. unknown characters in a prompt) is one line ``rnnlab COMMAND: warning:
...``. ``--debug`` (before or after the command) or the environment variable ``RNNLAB_DEBUG=1`` adds
the traceback, for a bug report. An unexpected exception (a bug) keeps its traceback.

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

Deployment (:mod:`rnnlab.cli.export`; see :mod:`rnnlab.onnx`)::

    rnnlab export RUN [--out model.onnx] [--opset N] [--head auto|none|softmax|sigmoid] [--lengths] [--force]

Also ``rnnlab demo`` (:mod:`rnnlab.cli.demo`) and ``rnnlab gradcheck`` (:mod:`rnnlab.cli.gradcheck`).

Adding a command: in a module of this package, write ``configure(parser)`` (adds the options, with
the helpers of :mod:`rnnlab.cli._args`) and ``run(args) -> int``, register them with
``@command("name", "one-line help", configure)`` on ``run`` (from :mod:`rnnlab.cli._registry`), and
import the module below. Commands raise for failures; :func:`main` maps the exception to the exit code.
"""

from __future__ import annotations

import os
import sys

try:  # a Ctrl-C while the commands load ends the program like one while they run: a line and 130, no traceback
    import argparse

    from rnnlab._errors import RnnlabWarning, TrainingDiverged
    from rnnlab.cli._registry import COMMANDS, Command, Interrupted, command
    from rnnlab.data.datasets import DatasetError
    from rnnlab.io.files import ModelFileError
    from rnnlab.lab.config import ConfigError
    from rnnlab.nn import kernels
    from rnnlab.training.checkpoint import CheckpointError, RunDirectoryError

    # Each command module registers its commands on import; `rnnlab --help` lists them in this order.
    # isort: off
    from rnnlab.cli import demo, gradcheck, run, diagnose, experiment, inspect, export, compare  # noqa: F401
    # isort: on
except KeyboardInterrupt:
    from rnnlab._startup import interrupted_while_starting

    interrupted_while_starting()
    raise

DEBUG_ENV = "RNNLAB_DEBUG"

__all__ = ["main", "build_parser", "command", "COMMANDS", "Command"]


def _exit_code(exc: BaseException) -> int | None:
    """The exit code of an expected failure (its message is the whole story), None for a bug."""
    from rnnlab.lab.experiments import PlotDependencyError
    from rnnlab.lab.tasks import RunError

    if isinstance(exc, ConfigError):
        return 2
    if isinstance(exc, (DatasetError, RunError, TrainingDiverged, ModelFileError, PlotDependencyError,
                        OSError, MemoryError, CheckpointError, RunDirectoryError)):
        return 1
    if isinstance(exc, (ValueError, TypeError)):  # an argument the library refuses, with its reason
        return 2
    return None


def _message(exc: BaseException) -> str:
    """The exception as one line: its message, or its type when it has none."""
    text = " ".join(str(exc).split()) if str(exc).strip() else ""
    if isinstance(exc, OSError) and exc.strerror:
        names = " -> ".join(f"'{f}'" for f in (exc.filename, exc.filename2) if f is not None)
        text = f"{exc.strerror}: {names}" if names else exc.strerror
    if isinstance(exc, MemoryError):
        text = "out of memory" + (f" ({text})" if text else "")
    return text or type(exc).__name__


def _debug_env() -> bool:
    return os.environ.get(DEBUG_ENV, "").strip().lower() not in ("", "0", "false", "no")


def _show_warning(command_name: str):
    """A ``warnings.showwarning`` printing ``rnnlab COMMAND: warning: MESSAGE`` (one line) to stderr."""
    def show(message, category, filename, lineno, file=None, line=None):
        print(f"rnnlab {command_name}: warning: {' '.join(str(message).split())}", file=sys.stderr, flush=True)
    return show


class _Parser(argparse.ArgumentParser):
    """argparse's parser with a usage error as one line (``rnnlab CMD: error: ...; see 'rnnlab CMD --help'``)."""

    def error(self, message: str):
        self.exit(2, f"{self.prog}: error: {' '.join(message.split())}; see '{self.prog} --help'\n")


def build_parser() -> argparse.ArgumentParser:
    from rnnlab._version import __version__

    parser = _Parser(prog="rnnlab",
                                     description="Recurrent neural networks in NumPy with hand-written BPTT.")
    parser.add_argument("--version", action="version", version=f"rnnlab {__version__}")
    debug = (f"on an error, print the traceback too, for a bug report (also: {DEBUG_ENV}=1)")
    parser.add_argument("--debug", action="store_true", help=debug)
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    for cmd in COMMANDS.values():
        p = sub.add_parser(cmd.name, help=cmd.help, description=cmd.help)
        cmd.configure(p)
        p.add_argument("--debug", action="store_true", default=argparse.SUPPRESS, help=debug)
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
    argv = sys.argv[1:] if argv is None else [str(a) for a in argv]
    try:
        parser = build_parser()
        try:
            args = parser.parse_args(argv)
        except SystemExit as exc:  # --help, --version (0) and usage errors (2)
            return exc.code if isinstance(exc.code, int) else 2
    except KeyboardInterrupt:
        print("rnnlab: interrupted", file=sys.stderr)
        return 130
    if args.command is None:
        print("rnnlab: error: a command is required: " + ", ".join(COMMANDS) + "; see 'rnnlab --help'",
              file=sys.stderr)
        return 2
    return _run(args, debug=args.debug or _debug_env())


def _run(args: argparse.Namespace, *, debug: bool) -> int:
    """Run the parsed command; every expected failure becomes one line on stderr and its exit code."""
    import traceback
    import warnings

    try:
        with warnings.catch_warnings():
            warnings.showwarning = _show_warning(args.command)
            warnings.simplefilter("always", RnnlabWarning)  # shown as lines, even under -W error
            if kernels.environment_error() is not None:
                raise ConfigError(kernels.environment_error())
            code = args.run(args)
        sys.stdout.flush()  # a reader that went away (`rnnlab predict ... | head`) shows up here, not at exit
        return code
    except BrokenPipeError:
        _silence_stdout()
        return 141  # 128 + SIGPIPE, as a shell reports a command whose reader closed the pipe
    except KeyboardInterrupt as exc:
        if debug:
            traceback.print_exc()
        hint = f"; {exc}" if isinstance(exc, Interrupted) else ""
        what, code = (exc.what, exc.code) if isinstance(exc, Interrupted) else ("interrupted", 130)
        print(f"rnnlab {args.command}: {what}{hint}", file=sys.stderr)
        return code
    except Exception as exc:
        code = _exit_code(exc)
        if code is None:
            raise
        if debug:
            traceback.print_exc()
        print(f"rnnlab {args.command}: error: {_message(exc)}", file=sys.stderr)
        return code


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
