"""``rnnlab export RUN [--out PATH] [--opset N] [--head auto|none|softmax|sigmoid] [--lengths] [--force]``:
write a run's model as an ONNX file (:func:`rnnlab.onnx.export`) and say what the graph takes and returns."""

from __future__ import annotations

import argparse
from pathlib import Path

from rnnlab.cli._args import int_at_least
from rnnlab.cli._registry import command
from rnnlab.io.onnx_export import DEFAULT_OPSET, export
from rnnlab.lab.runs import load_run
from rnnlab.lab.tasks import RunError
from rnnlab.nn.layers import Dense
from rnnlab.nn.sequential import Sequential

__all__ = ["configure_cli", "run_cli", "DEFAULT_FILE"]

DEFAULT_FILE = "model.onnx"


def configure_cli(parser: argparse.ArgumentParser) -> None:
    """The options of ``rnnlab export``."""
    parser.add_argument("run_dir", metavar="RUN", help="a run directory (its final model, else its latest checkpoint)")
    parser.add_argument("--out", metavar="PATH", default=None, help=f"the file to write (default: RUN/{DEFAULT_FILE})")
    parser.add_argument("--opset", type=int_at_least(1), default=DEFAULT_OPSET, metavar="N",
                        help="the ONNX opset, 14 or newer (default: %(default)s)")
    parser.add_argument("--head", choices=("auto", "none", "softmax", "sigmoid"), default="auto",
                        help="an activation on the output: auto is softmax for a language model or a classifier "
                             "with several classes, sigmoid for one logit, none for forecasting "
                             "(default: %(default)s)")
    parser.add_argument("--lengths", action="store_true",
                        help="add an int32 input sequence_lens (B,) for right-padded batches (not needed when the "
                             "model masks id 0 itself)")
    parser.add_argument("--force", action="store_true", help="replace the file if it exists")


def _auto_head(task: str, model) -> str | None:
    last = model.layers[-1] if isinstance(model, Sequential) else model
    if task == "forecasting" or not isinstance(last, Dense) or last.activation != "linear":
        return None
    if task == "language_model" or last.units > 1:
        return "softmax"
    return "sigmoid"


@command("export", "write a run's model as an ONNX file for ONNX Runtime", configure_cli)
def run_cli(args: argparse.Namespace) -> int:
    """``rnnlab export``: write the file and describe it (exit code 0)."""
    run = load_run(args.run_dir)
    out = Path(args.out) if args.out is not None else run.run_dir / DEFAULT_FILE
    if out.exists() and not args.force:
        raise FileExistsError(f"'{out}' exists; pass --force to replace it or --out to write elsewhere")
    head = _auto_head(run.config.data.task, run.model) if args.head == "auto" else (
        None if args.head == "none" else args.head)
    try:
        export(run.model, out, opset=args.opset, head=head, lengths=args.lengths)
    except (ImportError, TypeError, ValueError) as exc:
        raise RunError(f"cannot export '{run.model_source}': {exc}") from None
    print(f"wrote {out} ({out.stat().st_size / 1e3:.1f} kB, opset {args.opset}, head {head or 'none'}): "
          "input x (batch, time), output y; the recurrent states are the optional inputs state_in.* and the "
          "outputs state_out.*")
    return 0
