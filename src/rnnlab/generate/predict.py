"""Prediction for new raw inputs: :func:`predict_proba` / :func:`predict_classes` (texts through the saved
vocabulary) and :func:`predict_values` (numbers through a fitted scaler). Every batch runs from zero
state (the state map ``{}``), whatever the layers' ``stateful`` flags.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from rnnlab._validation import cast_float, check_positive_int
from rnnlab.data.text import Vocabulary
from rnnlab.generate.generator import _check_model
from rnnlab.generate.text import encode_texts
from rnnlab.nn.functional import sigmoid, softmax
from rnnlab.nn.module import Module
from rnnlab.nn.state import forward_with_states

__all__ = ["predict_classes", "predict_proba", "predict_values"]


def _predict_batches(model: Module, x: np.ndarray, mask: np.ndarray | None, batch_size: int) -> np.ndarray:
    """Model outputs for x in batches, inference mode, each batch from zeros (the state map ``{}``)."""
    batch_size = check_positive_int("batch_size", batch_size)
    outs = []
    for start in range(0, len(x), batch_size):
        sl = slice(start, start + batch_size)
        out, _ = forward_with_states(model, x[sl], {}, mask=None if mask is None else mask[sl], training=False)
        outs.append(np.asarray(out[0] if isinstance(out, tuple) else out))
    return np.concatenate(outs, axis=0)


def predict_proba(model: Module, vocab: Vocabulary, texts: Sequence[str], *, tokenizer=None, maxlen: int | None = None,
                  truncating: str = "post", batch_size: int = 256) -> np.ndarray:
    """Class probabilities (B, K) for new raw texts, through the saved vocabulary (:func:`encode_texts`).

    The model maps ids (B, T) with a mask to logits (B, K): ``softmax`` per row; or to one logit
    (B, 1) of the positive class (trained with binary cross-entropy): ``[1 - s, s]`` with
    ``s = sigmoid(z)``, so K = 2.
    """
    model = _check_model(model)
    ids, mask = encode_texts(vocab, texts, tokenizer=tokenizer, maxlen=maxlen, truncating=truncating)
    z = _predict_batches(model, ids, mask, batch_size).astype(np.float64)  # (B, K)
    if z.ndim != 2:
        raise ValueError(f"predict_proba needs a classifier with one row of logits per text, (B, K); the model "
                         f"returned shape {z.shape} (a recurrent layer before the output needs return_sequences=False)")
    if z.shape[1] == 1:
        s = sigmoid(z[:, 0])  # (B,)
        return np.stack([1.0 - s, s], axis=1)
    return softmax(z)


def predict_classes(model: Module, vocab: Vocabulary, texts: Sequence[str], *, labels: Sequence | None = None,
                    tokenizer=None, maxlen: int | None = None, truncating: str = "post",
                    batch_size: int = 256) -> np.ndarray:
    """The most probable class of each raw text: ids (B,) int64, or ``labels[id]`` when ``labels`` is given.

    See :func:`predict_proba`; with a single output logit the class is 1 when the logit is > 0.
    """
    proba = predict_proba(model, vocab, texts, tokenizer=tokenizer, maxlen=maxlen, truncating=truncating,
                          batch_size=batch_size)  # (B, K)
    classes = proba.argmax(axis=1)  # (B,)
    if labels is None:
        return classes
    if isinstance(labels, str) or not isinstance(labels, Sequence) or len(labels) != proba.shape[1]:
        raise ValueError(f"labels must be a sequence of {proba.shape[1]} class names (one per model output class), "
                         f"got {labels!r:.80}")
    return np.asarray(labels)[classes]


def predict_values(model: Module, x, *, scaler=None, mask=None, batch_size: int = 256) -> np.ndarray:
    """Regression / forecasting outputs for new raw numbers, in the original units.

    Parameters
    ----------
    model : Module
        Maps (B, T, F) inputs to outputs, e.g. (B, horizon) or (B, T, F), in scaled units.
    x : array_like, shape (B, T, F), or (B, T) for one feature
        Raw windows, as measured (integers allowed).
    scaler : object with ``transform`` and ``inverse_transform``, optional
        The scaler fitted on the training part (e.g. ``rnnlab.timeseries.StandardScaler``, or
        any object with those two methods): ``transform`` is applied to the (B, T, F) input and
        ``inverse_transform`` to the model's output. None: no scaling.
    mask : array_like of bool, shape (B, T), optional
        Valid steps, for windows of different lengths.

    Returns
    -------
    ndarray
        ``scaler.inverse_transform(model(scaler.transform(x)))``, of the model's output shape.
    """
    model = _check_model(model)
    if scaler is not None and not all(callable(getattr(scaler, m, None)) for m in ("transform", "inverse_transform")):
        raise TypeError(f"scaler must have transform and inverse_transform methods (e.g. a fitted "
                        f"rnnlab.timeseries.StandardScaler), got {type(scaler).__name__}")
    x = np.asarray(x)
    if not (np.issubdtype(x.dtype, np.integer) or np.issubdtype(x.dtype, np.floating)):
        raise TypeError(f"x must hold numbers, got dtype {x.dtype}")
    if x.ndim == 2:
        x = x[:, :, None]  # (B, T, 1)
    if x.ndim != 3 or x.shape[0] == 0 or x.shape[1] == 0:
        raise ValueError(f"x must have shape (batch, timesteps, features) or (batch, timesteps), got {np.shape(x)}")
    x = raw = x.astype(np.float64)
    if scaler is not None:
        with np.errstate(over="ignore", invalid="ignore"):  # a value beyond any float is named below
            x = np.asarray(scaler.transform(x))
        if x.shape == raw.shape and not np.isfinite(x[np.isfinite(raw)]).all():
            bad = tuple(int(i) for i in np.argwhere(~np.isfinite(x) & np.isfinite(raw))[0])
            raise ValueError(f"x holds {raw[bad]:.6g} at index {bad}, which the scaler maps beyond the range of "
                             f"{x.dtype.name}")
    if mask is not None:
        mask = np.asarray(mask)
        if mask.shape != x.shape[:2]:
            raise ValueError(f"mask must have shape (batch, timesteps) = {x.shape[:2]}, got {mask.shape}")
    x = cast_float("x" if scaler is None else "x (scaled by the scaler)", x, model.dtype,
                   shown=raw if x.shape == raw.shape else None)
    y = _predict_batches(model, x, mask, batch_size)
    return y if scaler is None else np.asarray(scaler.inverse_transform(y))
