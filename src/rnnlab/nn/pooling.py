"""Pooling over time: ``GlobalMaxPool1D`` and ``GlobalAveragePool1D`` reduce a (B, T, F) sequence to (B, F).

They turn the sequence a recurrent layer returns (``return_sequences=True``) into one vector per
sequence for a classifier, instead of the last step's output: max-pooling over time is the
standard BiLSTM text classifier's (Conneau et al. 2017, "BiLSTM-max"). The padding mask that
flows through :class:`~rnnlab.nn.sequential.Sequential` is honoured: a padded step never wins the
max and does not count in the mean. The output has no time axis, so no mask leaves the layer.

Both are parameter-free and keep their input's float dtype (float32 or float64), as
:class:`~rnnlab.nn.layers.Dropout` does. The Keras spellings ``GlobalMaxPooling1D`` and
``GlobalAveragePooling1D`` are the same classes.
"""

from __future__ import annotations

import numpy as np

from rnnlab._validation import as_float_array, check_mask
from rnnlab.nn.module import Module


class _GlobalPool1D(Module):
    """Shared input, mask and shape handling of the two poolings (``_pool``/``_unpool`` differ)."""

    keeps_input_dtype = True

    def __init__(self, *, dtype="float32", name: str | None = None):
        super().__init__(dtype=dtype, name=name)
        self.built = True
        self._tape = None

    def _inputs(self, x, mask) -> tuple[np.ndarray, np.ndarray | None]:
        """``x`` as a float (B, T, F) array in its own float dtype, and the (B, T) bool mask or None."""
        x = as_float_array("x", x, x.dtype if isinstance(x, np.ndarray) and x.dtype.kind == "f" else self.dtype)
        if x.ndim != 3:
            raise ValueError(f"x must have 3 dimensions (batch, timesteps, features), got shape {x.shape}")
        if x.shape[1] == 0:
            raise ValueError(f"x must have at least one time step to pool over, got shape {x.shape}")
        mask = check_mask(mask, x.shape[0], x.shape[1])
        if mask is not None:
            empty = np.flatnonzero(~mask.any(axis=1))
            if empty.size:
                raise ValueError(f"mask: row {int(empty[0])} of the batch is all padding ({empty.size} such row(s)), "
                                 f"so {type(self).__name__} has no step to pool over; drop empty sequences or give "
                                 "each at least one valid step")
        return x, mask

    def forward(self, x, mask=None, initial_state=None, training: bool = False):
        if initial_state is not None:
            raise ValueError(f"{type(self).__name__} has no state, so initial_state must be None, got "
                             f"{type(initial_state).__name__}")
        x, mask = self._inputs(x, mask)
        self._tape = None
        y, tape = self._pool(x, mask)
        self._tape = (x.shape, x.dtype, tape)
        return y

    def backward(self, dy, *d_states, input_grad: bool = True):
        shape, dtype, tape = self._need_tape(self._tape)
        if d_states:
            raise ValueError(f"{type(self).__name__} returns no state, so it takes no state gradients, got "
                             f"{len(d_states)}")
        dy = as_float_array("dy", dy, dtype)
        if dy.shape != (shape[0], shape[2]):
            raise ValueError(f"dy must have the output's shape {(shape[0], shape[2])}, got {dy.shape}")
        return self._unpool(dy, shape, tape) if input_grad else None

    def compute_mask(self, mask, x=None):
        return None  # the time axis is gone

    def output_shape(self, input_shape):
        input_shape = tuple(input_shape)
        if len(input_shape) != 3:
            raise ValueError(f"{type(self).__name__} needs (batch, timesteps, features) inputs, got shape "
                             f"{input_shape}")
        return (input_shape[0], input_shape[2])


class GlobalMaxPool1D(_GlobalPool1D):
    """The maximum over time of each feature: ``y[b, f] = max over valid t of x[b, t, f]``.

    Parameters
    ----------
    dtype : "float32" or "float64"
        Used only for input that is not a float array yet; a float input keeps its dtype.
    name : str, optional

    Notes
    -----
    Shapes: x (B, T, F), mask (B, T) bool (True = a valid step), y (B, F). Forward keeps
    ``t*[b, f] = argmax over valid t of x[b, t, f]`` (padded steps are set to ``-inf`` first, so
    they never win); backward routes each output gradient to that one step,
    ``dx[b, t*[b, f], f] = dy[b, f]``, and zero everywhere else (padding included). Ties go to the
    first (earliest) maximal step, as ``np.argmax`` picks; the max is not differentiable there, and
    ``torch.max(dim=1)`` may pick another of the tied steps. A row of the mask that is all padding
    has no maximum and raises ``ValueError``. PyTorch: ``x.masked_fill(~mask[..., None], -inf).max(dim=1)``;
    Keras: ``GlobalMaxPooling1D``.

    Examples
    --------
    >>> import numpy as np
    >>> x = np.array([[[1.0], [3.0], [9.0]]])
    >>> GlobalMaxPool1D()(x, mask=np.array([[True, True, False]]))  # step 2 is padding
    array([[3.]])
    """

    def _pool(self, x, mask):
        B, T, F = x.shape
        scores = x if mask is None else np.where(mask[:, :, None], x, -np.inf)  # (B, T, F)
        t_star = scores.argmax(axis=1)  # (B, F): the first maximal valid step
        y = np.take_along_axis(x, t_star[:, None, :], axis=1)[:, 0, :]  # (B, F)
        return y, t_star

    def _unpool(self, dy, shape, t_star):
        dx = np.zeros(shape, dtype=dy.dtype)  # (B, T, F)
        np.put_along_axis(dx, t_star[:, None, :], dy[:, None, :], axis=1)
        return dx


class GlobalAveragePool1D(_GlobalPool1D):
    """The mean over the valid steps of each feature: ``y[b, f] = sum over valid t of x[b, t, f] / n_b``.

    Parameters
    ----------
    dtype : "float32" or "float64"
        Used only for input that is not a float array yet; a float input keeps its dtype.
    name : str, optional

    Notes
    -----
    Shapes: x (B, T, F), mask (B, T) bool, y (B, F); ``n_b`` is the number of valid steps of row
    ``b`` (T without a mask). Forward ``y = sum_t m[b, t] x[b, t, :] / n_b`` (one batched product
    ``m^T x``); backward ``dx[b, t, :] = m[b, t] dy[b, :] / n_b``: every valid step gets an equal
    share, padded steps get zero. A row that is all padding (``n_b = 0``) has no mean and raises
    ``ValueError``. PyTorch: ``(x * m[..., None]).sum(1) / m.sum(1, keepdim=True)``; Keras:
    ``GlobalAveragePooling1D``.

    Examples
    --------
    >>> import numpy as np
    >>> x = np.array([[[1.0], [3.0], [9.0]]])
    >>> GlobalAveragePool1D()(x, mask=np.array([[True, True, False]]))
    array([[2.]])
    """

    def _pool(self, x, mask):
        B, T, F = x.shape
        if mask is None:
            return x.mean(axis=1), None  # (B, F)
        weights = mask.astype(x.dtype)  # (B, T)
        weights /= weights.sum(axis=1, keepdims=True)  # (B, T): m[b, t] / n_b, each row sums to 1
        y = np.matmul(weights[:, None, :], x)[:, 0, :]  # (B, 1, T) @ (B, T, F) -> (B, F)
        return y, weights

    def _unpool(self, dy, shape, weights):
        B, T, F = shape
        if weights is None:
            dx = np.empty(shape, dtype=dy.dtype)  # (B, T, F)
            dx[...] = (dy / T)[:, None, :]
            return dx
        return weights[:, :, None] * dy[:, None, :]  # (B, T, 1) * (B, 1, F) -> (B, T, F)


#: the Keras spellings
GlobalMaxPooling1D = GlobalMaxPool1D
GlobalAveragePooling1D = GlobalAveragePool1D
