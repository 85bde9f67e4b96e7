"""The commands around a run configuration (see :mod:`rnnlab.lab.config` and :mod:`rnnlab.lab.tasks`)::

    rnnlab train CONFIG.toml [--set section.key=value ...] [--run-dir DIR] [--data-dir DIR] [--resume] [--distributed]
    rnnlab evaluate RUN [--split val|test | --path FILE] [--data-dir DIR]
    rnnlab generate RUN --prime TEXT [--length N --temperature T --top-k K --top-p P --greedy --seed S --stop TEXT]
    rnnlab predict RUN (INPUT... | --file FILE [--out PRED.csv|.tsv|.jsonl]) [--format table|json]
    rnnlab summary CONFIG.toml [--set ...] [--data-dir DIR]
"""

from __future__ import annotations

import argparse

from rnnlab._errors import TrainingStopped
from rnnlab.cli._args import add_data_dir, int_at_least, int_between, positive_float, unit_float
from rnnlab.cli._registry import Interrupted, command
from rnnlab.lab.config import ConfigError

#: the most tokens ``rnnlab generate --length`` asks for (a typo of a few zeros should not run for hours)
MAX_LENGTH = 100_000


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


# --------------------------------------------------------------------------- train
def _configure_train(parser: argparse.ArgumentParser) -> None:
    _add_config(parser)
    parser.add_argument("--run-dir", metavar="DIR", default=None,
                        help="where the run is written: a new or empty directory, or one of rnnlab's runs "
                             "(default: runs/<config file name without .toml>)")
    parser.add_argument("--resume", action="store_true",
                        help="continue the run in --run-dir from its latest checkpoint "
                             "([train] may change, e.g. more epochs)")
    parser.add_argument("--distributed", action="store_true",
                        help="train data-parallel over MPI ranks (mpiexec -n N rnnlab train ...; detected from the "
                             "MPI launcher without this flag, which makes a missing mpi4py an error)")


@command("train", "train the model a run configuration describes, writing a run directory", _configure_train)
def _run_train(args: argparse.Namespace) -> int:
    from pathlib import Path

    from rnnlab.lab import runs
    from rnnlab.lab.config import load_config

    config = load_config(args.config, args.overrides)
    run_dir = Path(args.run_dir) if args.run_dir else Path("runs") / Path(args.config).stem
    try:
        metrics = runs.train(config, run_dir, data_dir=args.data_dir, resume=args.resume,
                             distributed=True if args.distributed else None)
    except TrainingStopped as exc:  # SIGTERM: stopped after a step, with a checkpoint there
        raise Interrupted(_after_interrupt(args, run_dir), what=f"stopped by {exc.signal_name} with a checkpoint",
                          code=143) from None
    except KeyboardInterrupt:
        raise Interrupted(_after_interrupt(args, run_dir)) from None
    if runs.rank() != 0:
        return 0  # rank 0 reports for the whole job
    print(f"run written to {run_dir}")
    _print_results(metrics)
    return 0


def _after_interrupt(args: argparse.Namespace, run_dir) -> str:
    """How to carry on after Ctrl-C: resume from the run's checkpoint, or start again when none was written."""
    import shlex

    from rnnlab.training.checkpoint import CheckpointError, latest_checkpoint

    again = ["rnnlab", "train", args.config, *[a for o in args.overrides for a in ("--set", o)], "--run-dir",
             str(run_dir)] + (["--data-dir", str(args.data_dir)] if args.data_dir else [])
    try:
        resumable = latest_checkpoint(run_dir) is not None
    except CheckpointError:
        resumable = False
    if resumable:
        return "continue with: " + shlex.join([*again, "--resume"])
    return "no checkpoint was written yet, so there is nothing to resume; start again with: " + shlex.join(again)


# --------------------------------------------------------------------------- evaluate
def _configure_evaluate(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("run_dir", metavar="RUN", help="a run directory written by rnnlab train")
    parser.add_argument("--split", choices=("train", "val", "test"), default=None,
                        help="the part of the data to evaluate on (default: test, or val when there is no test part)")
    parser.add_argument("--path", metavar="FILE", default=None,
                        help="evaluate on this file (or directory, or glob) instead, in the format of the run's "
                             "training files (runs trained on your own files)")
    add_data_dir(parser)


@command("evaluate", "evaluate a trained run on its validation or test data, or on another file",
         _configure_evaluate)
def _run_evaluate(args: argparse.Namespace) -> int:
    from rnnlab.lab import runs

    _print_results(runs.evaluate(args.run_dir, args.split, data_dir=args.data_dir, path=args.path))
    return 0


# --------------------------------------------------------------------------- generate
def _unescape(option: str, text: str) -> str:
    """``text`` with Python backslash escapes read (``"\\n"`` -> a newline), for stop strings typed in a shell."""
    try:
        return text.encode("utf-8").decode("unicode_escape").encode("latin-1").decode("utf-8")
    except UnicodeError as exc:
        raise ConfigError(f"{option}: cannot read the backslash escapes of {text!r} ({exc.reason})") from None


def _configure_generate(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("run_dir", metavar="RUN", help="a language-model run directory")
    parser.add_argument("--prime", required=True, metavar="TEXT", help="the text to start from")
    parser.add_argument("--length", type=int_between(1, MAX_LENGTH), default=200,
                        help=f"most tokens to generate, at most {MAX_LENGTH:,} (default: %(default)s); the text is "
                             "printed as it is generated")
    parser.add_argument("--temperature", type=positive_float, default=1.0,
                        help="sampling temperature (default: %(default)s)")
    parser.add_argument("--top-k", type=int_at_least(1), default=None, metavar="K",
                        help="sample among the K most probable tokens")
    parser.add_argument("--top-p", type=unit_float, default=None, metavar="P",
                        help="nucleus sampling: keep probability mass P")
    parser.add_argument("--greedy", action="store_true", help="always take the most probable token")
    parser.add_argument("--seed", type=int_at_least(0), default=None,
                        help="seed of the sampling (same seed, same text)")
    parser.add_argument("--stop", action="append", default=None, metavar="TEXT",
                        help="stop right after generating TEXT (repeatable; backslash escapes such as \\n are read)")
    parser.add_argument("--drop-stop", action="store_true", help="leave the stop text out of the output")


@command("generate", "generate text from a trained language model", _configure_generate)
def _run_generate(args: argparse.Namespace) -> int:
    import sys

    from rnnlab.lab import runs

    stop = None if args.stop is None else [_unescape("--stop", s) for s in args.stop]
    started = False

    def show(piece: str) -> None:  # streamed: a long generation shows progress, and Ctrl-C keeps what was made
        nonlocal started
        started = True
        sys.stdout.write(piece)
        sys.stdout.flush()

    try:
        runs.generate(args.run_dir, args.prime, length=args.length, temperature=args.temperature, top_k=args.top_k,
                      top_p=args.top_p, greedy=args.greedy, seed=args.seed, stop=stop,
                      include_stop=not args.drop_stop, on_text=show)
    finally:
        if started:  # end the line, also when interrupted, so the shell prompt starts on its own line
            sys.stdout.write("\n")
    return 0


# --------------------------------------------------------------------------- predict
def _configure_predict(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("run_dir", metavar="RUN", help="a run directory (sentiment, classification, forecasting, "
                                                       "language_model or tagging)")
    parser.add_argument("inputs", nargs="*", metavar="INPUT",
                        help="texts to classify, the latest values of a series, or a language model's prefix")
    parser.add_argument("--file", metavar="FILE", default=None,
                        help="predict for every input of this file (runs trained on your own files): one text per "
                             "line (.txt) or the training files' columns (.csv, .tsv, .jsonl); tagging: .conll or "
                             ".txt (one sentence per line); forecasting: a .csv with the input columns")
    parser.add_argument("--out", metavar="PREDICTIONS", default=None,
                        help="with --file: write the predictions to this .csv, .tsv or .jsonl file instead of stdout")
    parser.add_argument("--format", choices=("table", "json"), default="table",
                        help="stdout: tab-separated lines (default) or one JSON document (a list of objects)")


def _write_predictions(path, header: list[str], rows: list[tuple]) -> None:
    """``rows`` as a CSV/TSV file with a header line, or as JSON lines, by the suffix of ``path`` (atomically)."""
    import csv
    import io
    import json
    from pathlib import Path

    from rnnlab._files import write_atomic

    path = Path(path)
    suffix = path.suffix.lower()
    if suffix not in (".csv", ".tsv", ".jsonl"):
        raise ConfigError(f"--out: expected a .csv, .tsv or .jsonl file name, got {str(path)!r}")
    buf = io.StringIO()
    if suffix == ".jsonl":
        for row in rows:
            buf.write(json.dumps(dict(zip(header, row)), ensure_ascii=False) + "\n")
    else:
        writer = csv.writer(buf, delimiter="\t" if suffix == ".tsv" else ",", lineterminator="\n")
        writer.writerow(header)
        writer.writerows(rows)
    if not path.parent.is_dir():
        raise ConfigError(f"--out: the folder {str(path.parent)!r} does not exist")
    write_atomic(path, buf.getvalue().encode("utf-8"))


@command("predict", "predict for new raw inputs: a label per text, a forecast, or the next tokens", _configure_predict)
def _run_predict(args: argparse.Namespace) -> int:
    import json

    from rnnlab.lab import runs

    if (args.file is None) == (not args.inputs):
        raise ConfigError("predict: give either inputs on the command line or --file FILE (one of the two)")
    if args.out is not None and args.file is None:
        raise ConfigError("predict: --out needs --file")
    if args.file is not None:
        header, rows = runs.predict_file(args.run_dir, args.file)
    else:
        header, rows = runs.predict(args.run_dir, args.inputs)
    if args.out is not None:
        _write_predictions(args.out, header, rows)
        print(f"{len(rows)} predictions written to {args.out}")
    elif args.format == "json":
        print(json.dumps([dict(zip(header, row)) for row in rows], ensure_ascii=False, indent=1))
    else:
        print("\t".join(header))
        for row in rows:
            print("\t".join(f"{v:.4f}" if isinstance(v, float) else str(v) for v in row))
    return 0


# --------------------------------------------------------------------------- summary
@command("summary", "print a run configuration resolved, its data and its model", _add_config)
def _run_summary(args: argparse.Namespace) -> int:
    from rnnlab.lab import tasks
    from rnnlab.lab.config import load_config

    print(tasks.describe(load_config(args.config, args.overrides), args.data_dir))
    return 0
