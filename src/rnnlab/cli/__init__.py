"""The command line: ``rnnlab <command> [options]`` (also ``python -m rnnlab``).

Thin by design: each command parses its options, calls the library, prints, and returns an exit
code. ``main(argv)`` never calls ``sys.exit`` itself, so tests run it in-process.

Exit codes: 0 success; 1 the command failed (bad or missing data, a diverged run, an unusable run
directory, a failed check), with the reason on stderr; 2 usage or configuration error (argparse's
convention: bad options, an invalid config file or ``--set`` override); 130 interrupted (Ctrl-C; a
training run continues with ``--resume``); 141 the reader of the output went away (``| head``), quietly.

Commands around a run configuration (see :mod:`rnnlab.config` and :mod:`rnnlab.tasks`)::

    rnnlab train CONFIG.toml [--set section.key=value ...] [--run-dir DIR] [--data-dir DIR] [--resume]
    rnnlab evaluate RUN [--split val|test] [--data-dir DIR]
    rnnlab generate RUN --prime TEXT [--length N --temperature T --top-k K --top-p P --greedy --seed S --stop TEXT]
    rnnlab predict RUN INPUT...
    rnnlab summary CONFIG.toml [--set ...] [--data-dir DIR]

Gradient flow (see :mod:`rnnlab.diagnostics` and :mod:`rnnlab.experiments`)::

    rnnlab diagnose RUN [--split val|test] [--batch-size N] [--json]
    rnnlab experiment NAME [--full] [--out DIR] [--seed S];  rnnlab experiment --list
    rnnlab inspect RUN --text TEXT [--layer N --quantity h|c|i|f|g|o|r|z|n --unit N --out PAGE.html]

Adding a command: write ``configure(parser)`` (adds the options, with the helpers of
:mod:`rnnlab.cli._args`) and ``run(args) -> int``, and register them with
``@command("name", "one-line help", configure)`` on ``run`` (:mod:`rnnlab.cli._registry`).
"""

from __future__ import annotations

import argparse
import sys

from rnnlab._errors import TrainingDiverged
from rnnlab.cli._args import add_data_dir, int_at_least, positive_float, unit_float
from rnnlab.cli._registry import COMMANDS, Command, command
from rnnlab.data.datasets import DatasetError
from rnnlab.io.files import ModelFileError
from rnnlab.lab.config import ConfigError

__all__ = ["main", "build_parser", "command", "COMMANDS", "Command"]


# --------------------------------------------------------------------------- demo
DEMO_HELP = "train a small model on real data and show what it learnt (default: a character LSTM writing Python)"
DEMOS = """\
charlm     (the default) a character-level LSTM language model trained on the Python standard
           library's own source files: needs no download; shows progress and the validation
           bits per character, then prints generated Python (about 3 minutes on 2 cores)
sentiment  a (bidirectional) LSTM sentiment classifier on the UCI sentiment sentences, read
           from the data directory ($RNNLAB_DATA or --data-dir)

The options above are charlm's; a demo's own options follow its name (rnnlab demo sentiment --help)."""


def _configure_charlm(parser: argparse.ArgumentParser) -> None:
    from rnnlab.lab.demo import CharLMConfig

    d = CharLMConfig()
    parser.add_argument("--epochs", type=int_at_least(1), default=d.epochs, help="training epochs (default: %(default)s)")
    parser.add_argument("--seed", type=int_at_least(0), default=d.seed,
                        help="seed of the weights, the stream offsets and the samples (default: %(default)s)")
    parser.add_argument("--hidden", type=int_at_least(1), default=d.hidden_size, metavar="H",
                        help="LSTM units (default: %(default)s)")
    parser.add_argument("--minutes", type=positive_float, default=d.minutes, metavar="M",
                        help="time budget: stop training after M minutes (the current epoch is then validated), "
                             "then print the samples (default: %(default)s)")
    parser.add_argument("--corpus-bytes", type=int_at_least(2000), default=d.corpus_bytes, metavar="N",
                        help="characters of standard-library source to read, files sorted by name (default: %(default)s)")
    parser.add_argument("--run-dir", metavar="DIR", default=None,
                        help="keep the run (config, log, history, checkpoints, vocabulary, samples) in DIR "
                             "(default: a temporary directory, deleted at the end)")
    parser.add_argument("--limit", type=int_at_least(2000), default=None, metavar="N",
                        help="use only the first N characters of the corpus (at least 2000), for a quick run")


def _configure_sentiment(parser: argparse.ArgumentParser) -> None:
    from rnnlab.lab.demo import CELLS, SentimentConfig

    defaults = SentimentConfig()
    add_data_dir(parser)
    parser.add_argument("--epochs", type=int_at_least(1), default=defaults.epochs, help="training epochs (default: %(default)s)")
    parser.add_argument("--seed", type=int, default=defaults.seed, help="seed of the split, the weights and the shuffling (default: %(default)s)")
    parser.add_argument("--cell", choices=sorted(CELLS), default=defaults.cell, help="recurrent cell (default: %(default)s)")
    parser.add_argument("--bidirectional", action=argparse.BooleanOptionalAction, default=defaults.bidirectional,
                        help="read each sentence in both directions (default: %(default)s)")
    parser.add_argument("--limit", type=int_at_least(10), default=None, metavar="N",
                        help="use only N sentences (at least 10) after the seeded shuffle, for a quick run")


def _configure_demo(parser: argparse.ArgumentParser) -> None:
    """``rnnlab demo [OPTIONS]`` is ``rnnlab demo charlm [OPTIONS]``; ``rnnlab demo sentiment [OPTIONS]``."""
    parser.formatter_class = argparse.RawDescriptionHelpFormatter
    _configure_charlm(parser)
    demos = parser.add_subparsers(dest="demo", metavar="[DEMO]", title="demos", description=DEMOS, help=argparse.SUPPRESS)
    _configure_charlm(demos.add_parser("charlm", description="Train a character-level LSTM language model on the Python "
                                                             "standard library's own source files and print generated Python."))
    _configure_sentiment(demos.add_parser("sentiment", description="Train a sentiment classifier on the UCI sentiment "
                                                                   "sentences and report its test accuracy."))


@command("demo", DEMO_HELP, _configure_demo)
def _run_demo(args: argparse.Namespace) -> int:
    from functools import partial

    from rnnlab.lab import demo

    say = partial(print, flush=True)
    if args.demo == "sentiment":
        demo.run_sentiment(demo.SentimentConfig(data_dir=args.data_dir, epochs=args.epochs, seed=args.seed, cell=args.cell,
                                                bidirectional=args.bidirectional, limit=args.limit), print_fn=say)
        return 0
    config = demo.CharLMConfig(epochs=args.epochs, seed=args.seed, hidden_size=args.hidden, minutes=args.minutes,
                               corpus_bytes=args.corpus_bytes, limit=args.limit, run_dir=args.run_dir)
    try:
        demo.run_charlm(config, print_fn=say)
    except FileExistsError as exc:
        print(f"rnnlab demo: error: {exc}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        print("rnnlab demo: interrupted", file=sys.stderr)
        return 130
    return 0


# --------------------------------------------------------------------------- gradcheck
def _configure_gradcheck(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--tol", type=positive_float, default=1e-6, help="largest relative error accepted (default: %(default)s)")
    parser.add_argument("--seed", type=int, default=0, help="seed of the weights, inputs and projections (default: %(default)s)")


def gradcheck_cases(seed: int = 0):
    """``(label, module, x, kwargs)``: one small float64 module of each kind, with masks and initial states."""
    import numpy as np

    from rnnlab.nn.bidirectional import Bidirectional
    from rnnlab.nn.layers import Dense, Embedding
    from rnnlab.nn.recurrent import GRU, LSTM, SimpleRNN
    from rnnlab.nn.seq2seq import OneToMany, Seq2Seq
    from rnnlab.nn.sequential import Sequential

    f64 = {"dtype": "float64"}
    rng = np.random.default_rng(seed)
    B, T, D, H = 3, 4, 3, 4
    x = rng.standard_normal((B, T, D))  # (B, T, D)
    mask = np.arange(T)[None, :] < np.array([[4], [2], [3]])  # (B, T): lengths 4, 2, 3 (right padding)
    h0 = lambda: rng.standard_normal((B, H))  # noqa: E731
    cases = [
        ("SimpleRNN(tanh)", SimpleRNN(H, return_sequences=True, seed=seed, **f64), x, {"mask": mask, "initial_state": [h0()]}),
        ("SimpleRNN(relu)", SimpleRNN(H, activation="relu", seed=seed, **f64), x, {"initial_state": [h0()]}),
        ("LSTM", LSTM(H, return_sequences=True, return_state=True, seed=seed, **f64), x, {"mask": mask, "initial_state": [h0(), h0()]}),
        ("GRU", GRU(H, return_sequences=True, seed=seed, **f64), x, {"mask": mask, "initial_state": [h0()]}),
        ("GRU(reset_after=False)", GRU(H, reset_after=False, seed=seed, **f64), x, {"mask": mask, "initial_state": [h0()]}),
        ("LSTM(go_backwards)", LSTM(H, go_backwards=True, return_sequences=True, seed=seed, **f64), x, {"mask": mask}),
        ("Bidirectional(LSTM)", Bidirectional(LSTM(H, return_sequences=True, seed=seed, **f64)), x, {"mask": mask}),
        ("Dense(tanh)", Dense(5, activation="tanh", seed=seed, **f64), x, {}),
        ("Embedding+GRU+Dense", Sequential([Embedding(7, D, mask_zero=True, seed=seed, **f64), GRU(H, seed=seed, **f64),
                                            Dense(2, seed=seed, **f64)]), np.array([[1, 2, 3, 4], [5, 6, 0, 0], [1, 3, 5, 0]]), {}),
        ("OneToMany(first)", OneToMany(LSTM(H, return_sequences=True, seed=seed, **f64), Dense(5, seed=seed, **f64), T),
         rng.standard_normal((B, D)), {}),
        ("OneToMany(state, feedback)", OneToMany(GRU(H, return_sequences=True, return_state=True, seed=seed, **f64),
                                                 Dense(5, seed=seed, **f64), T, input_mode="state", feedback=True, seed=seed),
         (rng.standard_normal((B, D)), rng.integers(0, 5, (B, T))), {}),
    ]
    encoder = Sequential([Embedding(7, D, mask_zero=True, seed=seed, **f64), LSTM(H, return_state=True, seed=seed, **f64)])
    decoder = Sequential([Embedding(7, D, seed=seed, **f64), LSTM(H, return_sequences=True, return_state=True, seed=seed, **f64)])
    seq2seq = Seq2Seq(encoder, decoder, Dense(7, seed=seed, **f64), start_id=1, end_id=2)
    source = np.array([[3, 4, 5, 6], [6, 5, 0, 0], [4, 4, 3, 0]])
    targets = np.array([[6, 5, 4, 3, 2], [5, 6, 2, 0, 0], [3, 4, 4, 2, 0]])
    cases.append(("Seq2Seq(LSTM)", seq2seq, (source, targets), {}))
    return cases


@command("gradcheck", "check every layer's hand-written gradients against finite differences (float64)", _configure_gradcheck)
def _run_gradcheck(args: argparse.Namespace) -> int:
    from rnnlab.nn.gradcheck import gradcheck

    rows = []
    for label, module, x, kwargs in gradcheck_cases(args.seed):
        report = gradcheck(module, x, seed=args.seed, **kwargs)
        rows += [(label, name, error) for name, error in report.errors.items()]
    widths = (max(len("module"), *(len(r[0]) for r in rows)), max(len("gradient of"), *(len(r[1]) for r in rows)))
    print(f"{'module'.ljust(widths[0])}  {'gradient of'.ljust(widths[1])}  relative error  result")
    for label, name, error in rows:
        print(f"{label.ljust(widths[0])}  {name.ljust(widths[1])}  {error:14.3e}  {'ok' if error < args.tol else 'FAIL'}")
    failed = [r for r in rows if not r[2] < args.tol]
    worst = max(r[2] for r in rows)
    print(f"{len(rows)} gradients checked, largest relative error {worst:.3e}, tolerance {args.tol:g}: "
          + ("all passed" if not failed else f"{len(failed)} FAILED"))
    return 1 if failed else 0


# --------------------------------------------------------------------------- run configurations
def _add_config(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("config", metavar="CONFIG.toml", help="run configuration ([data], [model], [train] sections)")
    parser.add_argument("--set", dest="overrides", action="append", default=[], metavar="SECTION.KEY=VALUE",
                        help="override a configuration value (a TOML literal, e.g. train.lr=0.5 or model.cell=gru); "
                             "repeatable")
    add_data_dir(parser)


def _print_results(results: dict, prefix: str = "") -> None:
    """Nested results as aligned ``name  value`` lines."""
    rows = []

    def walk(d, p):
        for key, value in d.items():
            if isinstance(value, dict):
                walk(value, f"{p}{key}.")
            else:
                rows.append((p + key, f"{value:.6g}" if isinstance(value, float) else
                             ("[" + ", ".join(f"{v:.4f}" if isinstance(v, float) else str(v) for v in value) + "]"
                              if isinstance(value, list) else str(value))))
    walk(results, prefix)
    width = max(len(name) for name, _ in rows)
    for name, value in rows:
        print(f"{name.ljust(width)}  {value}")


def _configure_train(parser: argparse.ArgumentParser) -> None:
    _add_config(parser)
    parser.add_argument("--run-dir", metavar="DIR", default=None,
                        help="where the run is written (default: runs/<config file name without .toml>)")
    parser.add_argument("--resume", action="store_true",
                        help="continue the run in --run-dir from its latest checkpoint ([train] may change, e.g. more epochs)")


@command("train", "train the model a run configuration describes, writing a run directory", _configure_train)
def _run_train(args: argparse.Namespace) -> int:
    from pathlib import Path

    from rnnlab.lab import tasks
    from rnnlab.lab.config import load_config

    config = load_config(args.config, args.overrides)
    run_dir = Path(args.run_dir) if args.run_dir else Path("runs") / Path(args.config).stem
    try:
        metrics = tasks.train(config, run_dir, data_dir=args.data_dir, resume=args.resume)
    except KeyboardInterrupt:
        print(f"rnnlab train: interrupted; continue with: rnnlab train {args.config} --run-dir {run_dir} --resume",
              file=sys.stderr)
        return 130
    print(f"run written to {run_dir}")
    _print_results(metrics)
    return 0


def _configure_evaluate(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("run_dir", metavar="RUN", help="a run directory written by rnnlab train")
    parser.add_argument("--split", choices=("train", "val", "test"), default=None,
                        help="the part of the data to evaluate on (default: test, or val when there is no test part)")
    add_data_dir(parser)


@command("evaluate", "evaluate a trained run on its validation or test data", _configure_evaluate)
def _run_evaluate(args: argparse.Namespace) -> int:
    from rnnlab.lab import tasks

    _print_results(tasks.evaluate(args.run_dir, args.split, data_dir=args.data_dir))
    return 0


def _unescape(option: str, text: str) -> str:
    """``text`` with Python backslash escapes read (``"\\n"`` -> a newline), for stop strings typed in a shell."""
    try:
        return text.encode("utf-8").decode("unicode_escape").encode("latin-1").decode("utf-8")
    except UnicodeError as exc:
        raise ConfigError(f"{option}: cannot read the backslash escapes of {text!r} ({exc.reason})") from None


def _configure_generate(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("run_dir", metavar="RUN", help="a language-model run directory")
    parser.add_argument("--prime", required=True, metavar="TEXT", help="the text to start from")
    parser.add_argument("--length", type=int_at_least(1), default=200, help="most tokens to generate (default: %(default)s)")
    parser.add_argument("--temperature", type=positive_float, default=1.0, help="sampling temperature (default: %(default)s)")
    parser.add_argument("--top-k", type=int_at_least(1), default=None, metavar="K", help="sample among the K most probable tokens")
    parser.add_argument("--top-p", type=unit_float, default=None, metavar="P", help="nucleus sampling: keep probability mass P")
    parser.add_argument("--greedy", action="store_true", help="always take the most probable token")
    parser.add_argument("--seed", type=int_at_least(0), default=None, help="seed of the sampling (same seed, same text)")
    parser.add_argument("--stop", action="append", default=None, metavar="TEXT",
                        help="stop right after generating TEXT (repeatable; backslash escapes such as \\n are read)")
    parser.add_argument("--drop-stop", action="store_true", help="leave the stop text out of the output")


@command("generate", "generate text from a trained language model", _configure_generate)
def _run_generate(args: argparse.Namespace) -> int:
    from rnnlab.lab import tasks

    stop = None if args.stop is None else [_unescape("--stop", s) for s in args.stop]
    print(tasks.generate(args.run_dir, args.prime, length=args.length, temperature=args.temperature, top_k=args.top_k,
                         top_p=args.top_p, greedy=args.greedy, seed=args.seed, stop=stop,
                         include_stop=not args.drop_stop))
    return 0


def _configure_predict(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("run_dir", metavar="RUN", help="a run directory (sentiment, forecasting or language_model)")
    parser.add_argument("inputs", nargs="+", metavar="INPUT",
                        help="texts to classify, the latest values of a series, or a language model's prefix")


@command("predict", "predict for new raw inputs: a label per text, a forecast, or the next tokens", _configure_predict)
def _run_predict(args: argparse.Namespace) -> int:
    from rnnlab.lab import tasks

    header, rows = tasks.predict(args.run_dir, args.inputs)
    print("\t".join(header))
    for row in rows:
        print("\t".join(f"{v:.4f}" if isinstance(v, float) else str(v) for v in row))
    return 0


@command("summary", "print a run configuration resolved, its data and its model", _add_config)
def _run_summary(args: argparse.Namespace) -> int:
    from rnnlab.lab import tasks
    from rnnlab.lab.config import load_config

    print(tasks.describe(load_config(args.config, args.overrides), args.data_dir))
    return 0


# --------------------------------------------------------------------------- gradient flow
def _configure_diagnose(parser: argparse.ArgumentParser) -> None:
    from rnnlab.lab.diagnostics import configure_cli

    configure_cli(parser)


@command("diagnose", "gradient flow of a trained run: ||dL/dh_t|| through time per recurrent layer, labelled "
                     "vanishing, healthy or exploding", _configure_diagnose)
def _run_diagnose(args: argparse.Namespace) -> int:
    from rnnlab.lab.diagnostics import run_cli

    return run_cli(args)


def _configure_experiment(parser: argparse.ArgumentParser) -> None:
    from rnnlab.lab.experiments import configure_cli

    configure_cli(parser)


@command("experiment", "run an experiment on gradients through time (vanishing, adding, copy, exploding, "
                       "truncation): PNG plots and an HTML report", _configure_experiment)
def _run_experiment(args: argparse.Namespace) -> int:
    from rnnlab.lab.experiments import run_cli

    return run_cli(args)


def _configure_inspect(parser: argparse.ArgumentParser) -> None:
    from rnnlab.lab.viewer import configure_cli

    configure_cli(parser)


@command("inspect", "colour a text by a unit's activation, gate value or cell state in a self-contained "
                    "HTML page", _configure_inspect)
def _run_inspect(args: argparse.Namespace) -> int:
    from rnnlab.lab.viewer import run_cli

    return run_cli(args)


# --------------------------------------------------------------------------- entry point
def _exit_code(exc: BaseException) -> int | None:
    """The exit code of an expected failure (its message is the whole story), None for a bug."""
    from rnnlab.lab.tasks import RunError

    if isinstance(exc, ConfigError):
        return 2
    if isinstance(exc, (DatasetError, RunError, TrainingDiverged, ModelFileError)):
        return 1
    return None

def build_parser() -> argparse.ArgumentParser:
    from rnnlab._version import __version__

    parser = argparse.ArgumentParser(prog="rnnlab", description="Recurrent neural networks in NumPy with hand-written BPTT.")
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
    except KeyboardInterrupt:
        print(f"rnnlab {args.command}: interrupted", file=sys.stderr)
        return 130
    except Exception as exc:
        code = _exit_code(exc)
        if code is None:
            raise
        print(f"rnnlab {args.command}: error: {exc}", file=sys.stderr)
        return code


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
