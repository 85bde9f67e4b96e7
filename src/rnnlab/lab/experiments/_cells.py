"""The recurrent layers the experiments compare: :data:`CELLS` (cell name -> layer class, preset, label;
the classes from :data:`rnnlab.nn.recurrent.RECURRENT`) and :func:`make_recurrent`, which builds one."""

from __future__ import annotations

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
}


def make_recurrent(cell: str, hidden_size: int, *, input_size: int, seed, dtype="float32", **kwargs) -> Recurrent:
    """The recurrent layer ``cell`` names (a key of :data:`CELLS`), with its initialisation.

    Parameters
    ----------
    cell : str
        ``"rnn_tanh"``, ``"rnn_sigmoid"``, ``"rnn_relu"`` (``a_t = f(U x_t + W a_{t-1} + b)``, W
        orthogonal), ``"irnn"`` (relu, ``W = I``, ``b = 0``), ``"lstm"`` (forget bias 1) or ``"gru"``.
    hidden_size : int
        H.
    input_size : int
        D.
    seed : int or numpy.random.Generator
        Source of the initial weights.
    dtype : "float32" or "float64"
    **kwargs
        More arguments of the layer (``return_sequences``, ``stateful``, ...).
    """
    if cell not in CELLS:
        raise ValueError(f"cell must be one of {', '.join(repr(c) for c in CELLS)}; got {cell!r}")
    cls, preset, _ = CELLS[cell]
    return cls(hidden_size, input_size=input_size, seed=seed, dtype=dtype, **preset, **kwargs)


def _label(cell: str) -> str:
    return CELLS[cell][2]

