"""A trained run's page: :func:`inspect` tokenizes a text with the run's own tokenizer, traces the run's
model over it and writes the page into the run directory."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import numpy as np

from rnnlab._files import write_atomic
from rnnlab.lab.viewer.render import render_html
from rnnlab.lab.viewer.tracing import Trace, trace
from rnnlab.nn.functional import softmax

__all__ = ["DEFAULT_FILE", "inspect"]

#: the page ``inspect`` writes into the run directory when no ``out`` is given
DEFAULT_FILE = "inspect.html"


def _display(text: str, tokens: list[str], joiner: str) -> tuple[list[str], list[str]]:
    """What to show for each token of ``text`` as the user typed it, and the text between tokens.

    Characters map one to one (``ptb`` shows a typed space, not its ``_``); words are found again
    in the text (the tokenizers lower-case, so case is matched loosely), with the whitespace between
    them kept. Where that fails, the tokens themselves, joined by ``joiner``.
    """
    T = len(tokens)
    fallback = list(tokens), [""] + [joiner] * (T - 1) + [""]
    if joiner == "":
        return (list(text), [""] * (T + 1)) if len(text) == T else fallback
    low = text.lower()
    if len(low) != len(text):  # lower-casing changed the length: positions do not carry over
        return fallback
    shown, gaps, pos = [], [], 0
    for tok in tokens:
        j = low.find(tok, pos)
        if j < 0:
            return fallback
        gaps.append(text[pos:j])
        shown.append(text[j:j + len(tok)])
        pos = j + len(tok)
    gaps.append(text[pos:])
    return shown, gaps


def _description(task: str, traced: Trace, labels: Sequence[str] | None) -> str:
    if task == "language_model" and traced.next_token_prob is not None and traced.next_token_prob.size:
        p = traced.next_token_prob
        bits = -np.log2(np.maximum(p, np.finfo(np.float64).tiny))
        return (f"language model: {p.size} next tokens predicted, mean probability {p.mean():.3f}, "
                f"{bits.mean():.3f} bits per token on this text")
    if task == "sentiment" and traced.outputs.ndim == 1:
        proba = softmax(traced.outputs.astype(np.float64))
        k = int(proba.argmax())
        name = labels[k] if labels and k < len(labels) else f"class {k}"
        return f"sentiment: {name} (probability {proba[k]:.3f})"
    return ""


def inspect(run_dir, text: str, *, out=None, layer: int | None = None, quantity: str = "h",
            unit: int | None = None) -> Path:
    """Trace a trained text model over ``text`` and write the activation page; return its path.

    Parameters
    ----------
    run_dir : path
        A run directory of a ``sentiment`` or ``language_model`` run (``rnnlab train``).
    text : str
        Tokenized with the run's own tokenizer and encoded with its vocabulary; a token the
        vocabulary lacks is shown as typed (underlined) and read by the model as ``<unk>``.
    out : path, optional
        The page to write (default ``RUN/inspect.html``); written atomically.
    layer, quantity, unit
        The selection the page opens on (see :func:`render_html`).

    Raises
    ------
    RunError
        The run directory is unusable, or its task reads no text.
    ConfigError
        A usage error: empty text, a selection the model does not have, an output folder that does
        not exist, or a text too long for one page.
    """
    from rnnlab.lab.config import ConfigError
    from rnnlab.lab.runs import load_run
    from rnnlab.lab.tasks import LABELS, RunError, tokenizer_of

    if not isinstance(text, str):
        raise TypeError(f"text must be a str, got {type(text).__name__} {text!r:.40}")
    if not text.strip():
        raise ConfigError(f"inspect: the text is empty (got {text!r:.40}); give the text to colour, e.g. "
                          "--text \"To be, or not to be\"")
    run = load_run(run_dir)
    task = run.config.data.task
    if task not in ("language_model", "sentiment") or run.vocab is None:
        raise RunError(f"'{run.run_dir}' is a run of task {task!r}; inspect reads text, so it needs a language_model "
                       "or sentiment run")
    out = Path(run.run_dir) / DEFAULT_FILE if out is None else Path(out)
    if not out.parent.is_dir():
        raise ConfigError(f"inspect: the folder of the output file '{out}' does not exist")
    if out.is_dir():
        raise ConfigError(f"inspect: the output '{out}' is a directory; name the page file to write, "
                          f"e.g. '{out / DEFAULT_FILE}'")
    tokenize, joiner = tokenizer_of(run.config.data)
    tokens = tokenize(text)
    if not tokens:
        raise ConfigError(f"inspect: the text {text!r:.60} has no tokens for this run's tokenizer")
    ids = np.asarray(run.vocab.encode(tokens), dtype=np.int64)  # (T,)
    unknown = [t for t, tok in enumerate(tokens) if tok not in run.vocab]
    traced = trace(run.model, ids, next_token=task == "language_model")
    shown, gaps = _display(text, tokens, joiner)
    try:
        page = render_html(shown, traced, title=f"rnnlab inspect: {run.run_dir.name}", gaps=gaps, unknown=unknown,
                           layer=layer, quantity=quantity, unit=unit,
                           description=_description(task, traced, LABELS if task == "sentiment" else None))
    except (TypeError, ValueError) as exc:
        raise ConfigError(f"inspect: {exc}") from None
    write_atomic(out, page.encode("utf-8"))
    return out
