"""The recurrent layers the experiments compare: :data:`CELLS` (cell name -> layer class, preset, label;
the classes from :data:`rnnlab.nn.recurrent.RECURRENT`), :data:`CHRONO_CELLS` (those whose gate biases take
the chrono initialisation for the task's T) and :func:`make_recurrent`, which builds one."""

from __future__ import annotations

import numbers

from rnnlab.nn.recurrent import RECURRENT, Recurrent

#: cell name -> (layer class, constructor arguments, label in plots and reports); the classes are those of
#: :data:`~rnnlab.nn.recurrent.RECURRENT` (``"rnn"``, ``"lstm"``, ``"gru"``), each with the preset of a variant
CELLS: dict[str, tuple[type[Recurrent], dict, str]] = {
    "rnn_tanh": (RECURRENT["rnn"], {"activation": "tanh"}, "RNN(tanh)"),
    "rnn_sigmoid": (RECURRENT["rnn"], {"activation": "sigmoid"}, "RNN(sigmoid)"),
    "rnn_relu": (RECURRENT["rnn"], {"activation": "relu"}, "RNN(relu)"),
    # Le, Jaitly & Hinton (2015): relu units, W = I, b = 0
    "irnn": (RECURRENT["rnn"],
             {"activation": "relu", "recurrent_initializer": "identity", "bias_initializer": "zeros"}, "IRNN"),
    "lstm": (RECURRENT["lstm"], {"forget_bias": 1.0}, "LSTM"),
    "gru": (RECURRENT["gru"], {}, "GRU"),
    # Tallec & Ollivier (2018): gate biases from the longest dependency T_max (make_recurrent's T_max)
    "lstm-chrono": (RECURRENT["lstm"], {}, "LSTM (chrono)"),
    "gru-chrono": (RECURRENT["gru"], {}, "GRU (chrono)"),
}

#: the cells of :data:`CELLS` with the chrono initialisation: their ``bias_initializer`` is ``"chrono:T_MAX"``
#: with the ``T_max`` given to :func:`make_recurrent` (the experiments pass the task's T)
CHRONO_CELLS = ("lstm-chrono", "gru-chrono")


def make_recurrent(cell: str, hidden_size: int, *, input_size: int, seed, dtype="float32", T_max=None,
                   **kwargs) -> Recurrent:
    """The recurrent layer ``cell`` names (a key of :data:`CELLS`), with its initialisation.

    Parameters
    ----------
    cell : str
        ``"rnn_tanh"``, ``"rnn_sigmoid"``, ``"rnn_relu"`` (``a_t = f(U x_t + W a_{t-1} + b)``, W
        orthogonal), ``"irnn"`` (relu, ``W = I``, ``b = 0``), ``"lstm"`` (forget bias 1), ``"gru"``, or
        a chrono cell: ``"lstm-chrono"`` (forget bias ``b_f = log(u)``, ``u ~ U(1, T_max - 1)`` per unit,
        input bias ``b_i = -b_f``, the other biases 0) or ``"gru-chrono"`` (update-gate bias ``log(u)``,
        the others 0); see :class:`rnnlab.nn.initializers.chrono`.
    hidden_size : int
        H.
    input_size : int
        D.
    seed : int or numpy.random.Generator
        Source of the initial weights.
    dtype : "float32" or "float64"
    T_max : number > 2, optional
        The longest dependency, in steps, of a chrono cell (required for one; ignored by the others).
    **kwargs
        More arguments of the layer (``return_sequences``, ``stateful``, ...).
    """
    if cell not in CELLS:
        raise ValueError(f"cell must be one of {', '.join(repr(c) for c in CELLS)}; got {cell!r}")
    cls, preset, _ = CELLS[cell]
    if cell in CHRONO_CELLS:
        if isinstance(T_max, bool) or not isinstance(T_max, numbers.Real) or not T_max > 2:
            raise ValueError(f"T_max of the chrono cell {cell!r} must be a number > 2 (the longest dependency, "
                             f"in steps), got {T_max!r}")
        preset = {**preset, "bias_initializer": f"chrono:{T_max:g}"}
    return cls(hidden_size, input_size=input_size, seed=seed, dtype=dtype, **preset, **kwargs)


def _label(cell: str) -> str:
    return CELLS[cell][2]

