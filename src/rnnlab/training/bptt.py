"""Truncated backpropagation through time: the windows of BPTT(k2; k1) and the state carried along a
stream of batches (:class:`Stream`, saved in checkpoints).

A batch ``x`` (B, T, ...) is cut into *pieces* of ``k1`` steps; each piece is one optimizer update.
The update for the piece ``[a, e)`` runs the forward from the state at ``s = a - (k2 - k1)`` (so it
spans ``k2`` steps for a full piece), puts the loss on the piece's own ``e - a`` outputs, and
backpropagates through the whole window ``[s, e)``: Williams & Peng's (1990) BPTT(k2; k1), "every k1
steps, backpropagate k2 steps". The state at ``s`` is held constant (gradients do not flow into it).

- ``bptt=k`` is the usual truncated BPTT, ``k1 = k2 = k``: chunks of k steps, each starting from the
  final state of the previous chunk.
- Neither set: one update per batch over all its steps (full BPTT within the batch).
- The windows re-run the forward with the current weights from the *kept* state at ``s``. The trainer
  keeps the state at the end of every piece (an *anchor*); when ``s`` is not an anchor (``k2 - k1``
  not a multiple of ``k1``), it runs the forward from the latest anchor before ``s`` up to ``s``
  first, without gradient (with ``training=True``, as the window's own forward).
- ``Batch.new_sequence = False`` continues the previous batch's sequences: the pieces start from the
  carried state, and a window may reach back into the previous batch (the trainer keeps the inputs
  it needs, at most ``k2 - k1`` steps back).

The states are passed to the model explicitly, as state maps (:mod:`rnnlab.nn.state`); a stream keeps
them as lists with one entry per recurrent layer, in ``named_modules`` order (None for zeros).
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping

import numpy as np

__all__ = ["Stream", "extended", "windows"]


def windows(a0: int, T: int, k1: int, k2: int) -> Iterator[tuple[int, int, int]]:
    """``(s, a, e)`` for each update over the steps ``[a0, a0 + T)`` of a stream: the piece ``[a, e)``
    of ``k1`` steps (the last one may be shorter) and its window's start ``s = max(0, a - (k2 - k1))``."""
    for a in range(a0, a0 + T, k1):
        yield max(0, a - (k2 - k1)), a, min(a + k1, a0 + T)


class Stream:
    """The recurrent state carried along a stream of batches, for (truncated) BPTT.

    Times count steps since the last ``new_sequence``. ``anchors`` holds ``(time, states)`` for the
    kept boundaries (``states`` per recurrent layer, None for zeros); ``tail_x``/``tail_mask`` hold the
    inputs from the oldest anchor up to ``t`` (what a window reaching back into earlier batches reads).
    """

    def __init__(self):
        self.reset()

    def reset(self) -> None:
        self.t = 0
        self.anchors: list[tuple[int, list | None]] = [(0, None)]
        self.tail_x: np.ndarray | None = None
        self.tail_mask: np.ndarray | None = None

    @property
    def latest(self) -> list | None:
        return self.anchors[-1][1]

    def anchor_before(self, time_: int) -> tuple[int, list | None]:
        """The latest kept anchor at or before ``time_``."""
        return [a for a in self.anchors if a[0] <= time_][-1]

    def prune(self, overlap: int, x_ext, mask_ext, ext_start: int) -> None:
        """Keep what the next windows (reaching ``overlap`` steps before their piece) can need."""
        keep_from = [a for a in self.anchors if a[0] <= max(0, self.t - overlap)][-1][0]
        self.anchors = [a for a in self.anchors if a[0] >= keep_from]
        if keep_from >= self.t or x_ext is None:
            self.tail_x = self.tail_mask = None
        else:
            self.tail_x = x_ext[:, keep_from - ext_start:].copy()
            self.tail_mask = None if mask_ext is None else mask_ext[:, keep_from - ext_start:].copy()

    # ------------------------------------------------------------------ checkpoint form
    def arrays(self, prefix: str) -> tuple[dict, dict]:
        """``(json_part, arrays)`` describing this stream, for ``state.json`` and ``streams.npz``."""
        arrays, anchors = {}, []
        for i, (t, states) in enumerate(self.anchors):
            layers = None
            if states is not None:
                layers = []
                for j, layer_states in enumerate(states):
                    if layer_states is None:
                        layers.append(None)
                        continue
                    for k, s in enumerate(layer_states):
                        arrays[f"{prefix}.anchor{i}.layer{j}.state{k}"] = s
                    layers.append(len(layer_states))
            anchors.append({"time": t, "layers": layers})
        if self.tail_x is not None:
            arrays[f"{prefix}.tail_x"] = self.tail_x
            if self.tail_mask is not None:
                arrays[f"{prefix}.tail_mask"] = self.tail_mask
        return {"t": self.t, "anchors": anchors}, arrays

    def load(self, prefix: str, meta: dict, arrays: Mapping) -> None:
        self.t = int(meta["t"])
        self.anchors = []
        for i, anchor in enumerate(meta["anchors"]):
            states = None
            if anchor["layers"] is not None:
                states = [None if n is None
                          else tuple(np.array(arrays[f"{prefix}.anchor{i}.layer{j}.state{k}"]) for k in range(n))
                          for j, n in enumerate(anchor["layers"])]
            self.anchors.append((int(anchor["time"]), states))
        self.tail_x = np.array(arrays[f"{prefix}.tail_x"]) if f"{prefix}.tail_x" in arrays else None
        self.tail_mask = np.array(arrays[f"{prefix}.tail_mask"]) if f"{prefix}.tail_mask" in arrays else None


def _concat_time(a, b):
    return b if a is None else np.concatenate([a, b], axis=1)


def extended(stream: Stream, x, mask):
    """The inputs from the oldest kept anchor: the kept tail followed by this batch."""
    if stream.tail_x is None:
        return x, mask
    if mask is None and stream.tail_mask is None:
        ext_mask = None
    else:
        tail_mask = stream.tail_mask if stream.tail_mask is not None else np.ones(stream.tail_x.shape[:2], bool)
        batch_mask = mask if mask is not None else np.ones(np.shape(x)[:2], bool)
        ext_mask = _concat_time(tail_mask, batch_mask)
    return _concat_time(stream.tail_x, x), ext_mask
