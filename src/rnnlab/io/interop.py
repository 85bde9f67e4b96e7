"""Weights in and out of PyTorch: ``from_torch`` and ``to_torch`` for ``nn.RNN``, ``nn.LSTM`` and ``nn.GRU``;
and, from :mod:`rnnlab.io.keras`, Keras 3: ``from_keras``, ``to_keras``, ``load_keras``, ``save_keras``.

PyTorch is an optional dependency, imported only when one of these functions is called
(``pip install torch==2.13.0``).

The weights map one to one, gate blocks in the same order (LSTM i, f, g, o; GRU r, z, n)::

    rnnlab               torch, layer l, direction suffix "" or "_reverse"
    U    (G*H, D_l)      weight_ih_l{l}
    W    (G*H, H)        weight_hh_l{l}
    b    (G*H,)          bias_ih_l{l} + bias_hh_l{l}                 (SimpleRNN, LSTM)
    b    (3H,)           bias_ih_l{l} + [bias_hh_l{l}[:2H]; 0]       (GRU)
    b_hn (H,)            bias_hh_l{l}[2H:]                           (GRU, inside r * (W_hn h + b_hn))

PyTorch keeps two biases where one suffices: outside the GRU's reset product they only ever appear
summed, so ``from_torch`` adds them and ``to_torch`` writes ``bias_ih = b`` and ``bias_hh = 0``
(except the GRU's n block, ``bias_hh[2H:] = b_hn``). Hence rnnlab -> torch -> rnnlab returns
bitwise-equal parameters, and torch -> rnnlab -> torch keeps every weight bitwise and each summed
bias ``bias_ih + bias_hh`` bitwise (the split between the two changes, so the outputs agree to
round-off; from then on the round trip is a fixed point).
"""

from __future__ import annotations

import numpy as np

from rnnlab._validation import as_generator, optional_module
from rnnlab.io.keras import H5PY_REQUIREMENT, KERAS_REQUIREMENT, from_keras, load_keras, save_keras, to_keras
from rnnlab.nn.bidirectional import Bidirectional
from rnnlab.nn.layers import Dropout
from rnnlab.nn.module import Module
from rnnlab.nn.recurrent import GRU, LSTM, Recurrent, SimpleRNN
from rnnlab.nn.sequential import Sequential

__all__ = ["H5PY_REQUIREMENT", "KERAS_REQUIREMENT", "TORCH_REQUIREMENT", "from_keras", "from_torch", "load_keras",
           "save_keras", "to_keras", "to_torch"]

#: the PyTorch version the interop is tested with (what the install hint names)
TORCH_REQUIREMENT = "torch==2.13.0"

# torch ``mode`` -> (rnnlab class, cell settings it needs, torch class name, torch constructor arguments).
# One table serves both directions: from_torch reads a row by mode, to_torch finds the row whose class
# and settings the rnnlab layer matches.
_MODES = {
    "RNN_TANH": (SimpleRNN, {"activation": "tanh"}, "RNN", {"nonlinearity": "tanh"}),
    "RNN_RELU": (SimpleRNN, {"activation": "relu"}, "RNN", {"nonlinearity": "relu"}),
    "LSTM": (LSTM, {"candidate_activation": "tanh"}, "LSTM", {}),
    "GRU": (GRU, {"reset_after": True}, "GRU", {}),
}

_DIRECTIONS = ("", "_reverse")  # torch's parameter-name suffix of direction 0 and 1
_ACCEPTED_TORCH = "torch.nn.RNN, torch.nn.LSTM or torch.nn.GRU"
_ACCEPTED_RNNLAB = ("a SimpleRNN, LSTM or GRU layer, a Bidirectional of one, or a Sequential of those "
                    "(optionally with a Dropout between consecutive recurrent layers)")


def _import_torch():
    """Import PyTorch, or explain how to install it."""
    return optional_module("torch", "rnnlab.interop",
                           f"`pip install {TORCH_REQUIREMENT}` (or `pip install 'rnnlab[torch]'`)")


# ---------------------------------------------------------------------- the weight map, one direction of one layer
def _rnnlab_weights(mode: str, hidden_size: int, w_ih, w_hh, b_ih, b_hh) -> dict[str, np.ndarray]:
    """rnnlab's ``U, W, b[, b_hn]`` from torch's four arrays (``b_ih = b_hh = None`` when ``bias=False``)."""
    H = hidden_size
    if b_ih is None:
        b_ih = b_hh = np.zeros(w_ih.shape[0], dtype=w_ih.dtype)  # (G*H,)
    weights = {"U": w_ih, "W": w_hh}
    if mode == "GRU":
        b = b_ih.copy()  # (3H,)
        b[:2 * H] += b_hh[:2 * H]  # r and z: the two biases only appear summed
        weights["b"] = b
        weights["b_hn"] = b_hh[2 * H:].copy()  # (H,)
    else:
        weights["b"] = b_ih + b_hh  # (G*H,)
    return weights


def _torch_weights(layer: Recurrent) -> dict[str, np.ndarray]:
    """torch's ``weight_ih, weight_hh, bias_ih, bias_hh`` (no layer suffix) from one rnnlab layer."""
    p = layer.params
    H = layer.hidden_size
    bias_hh = np.zeros_like(p["b"])  # (G*H,)
    if "b_hn" in p:
        bias_hh[2 * H:] = p["b_hn"]
    return {"weight_ih": p["U"], "weight_hh": p["W"], "bias_ih": p["b"], "bias_hh": bias_hh}


def _directions(layer: Module) -> list[Recurrent]:
    """The recurrent layers of one torch layer: ``[forward]`` or ``[forward, backward]``."""
    if isinstance(layer, Bidirectional):
        return [layer.forward_layer, layer.backward_layer]
    return [layer]


# ---------------------------------------------------------------------- torch -> rnnlab
def from_torch(module, *, seed=None) -> Module:
    """Build the rnnlab module computing the ``output`` sequence of a PyTorch RNN, LSTM or GRU.

    Parameters
    ----------
    module : torch.nn.RNN, torch.nn.LSTM or torch.nn.GRU
        Any ``num_layers``, ``bidirectional``, ``batch_first``, ``bias``; float32 or float64; the
        RNN's ``nonlinearity`` tanh or relu. ``proj_size`` must be 0.
    seed : int or numpy.random.Generator, optional
        Seeds the rnnlab ``Dropout`` layers (when ``module.dropout > 0``) and the initialisers kept in
        the layers' configs (the weights themselves are PyTorch's).

    Returns
    -------
    Module
        For ``num_layers == 1``: a ``SimpleRNN``/``LSTM``/``GRU`` with ``return_sequences=True``, or a
        ``Bidirectional`` of one (merge ``"concat"``, forward features first, as torch). For more
        layers: a ``Sequential`` of those, with a ``Dropout(module.dropout)`` between consecutive
        layers when ``module.dropout > 0``. Its dtype is the module's. It maps ``x`` (B, T, D) to
        torch's ``output`` in batch-first layout, (B, T, num_directions * H), whatever the module's
        ``batch_first``: for a ``batch_first=False`` module, pass ``x.transpose(1, 0, 2)``.

    Raises
    ------
    TypeError
        If ``module`` is not one of the accepted classes, or its dtype is not float32/float64.
    ValueError
        If ``proj_size != 0`` (an LSTM with projections has no rnnlab equivalent).

    Notes
    -----
    Weight map per layer ``l`` and direction (suffix ``""`` or ``"_reverse"``, the latter into
    ``Bidirectional.backward_layer``)::

        U = weight_ih_l{l}     W = weight_hh_l{l}
        b = bias_ih_l{l} + bias_hh_l{l}                         (RNN, LSTM)
        b = bias_ih_l{l} + [bias_hh_l{l}[:2H]; 0],  b_hn = bias_hh_l{l}[2H:]    (GRU)

    with zero biases when ``bias=False``. The GRU's ``b_hn`` must stay separate because torch
    computes ``n_t = tanh(W_in x_t + b_in + r_t * (W_hn h_{t-1} + b_hn))``, rnnlab's
    ``reset_after=True`` form.

    Inter-layer dropout: torch drops the outputs of every layer but the last, in training only.
    rnnlab's ``Dropout`` does the same (inverted dropout, identity unless ``training=True``), so
    inference outputs match torch's ``eval()`` mode exactly; the random masks in training are of
    course not torch's.

    Example: ``from_torch(torch.nn.LSTM(8, 16, num_layers=2, bidirectional=True))`` gives
    ``Sequential([Bidirectional(LSTM(16, input_size=8, return_sequences=True)),
    Bidirectional(LSTM(16, input_size=32, return_sequences=True))])``.
    """
    torch = _import_torch()
    if not isinstance(module, (torch.nn.RNN, torch.nn.LSTM, torch.nn.GRU)):
        raise TypeError(f"from_torch expects a {_ACCEPTED_TORCH} module, got {type(module).__module__}."
                        f"{type(module).__qualname__}")
    if getattr(module, "proj_size", 0) != 0:
        raise ValueError(f"from_torch does not support LSTM projections: proj_size must be 0, got "
                         f"proj_size={module.proj_size} (rnnlab's LSTM state h has hidden_size units)")
    torch_dtype = module.weight_ih_l0.dtype
    dtypes = {torch.float32: "float32", torch.float64: "float64"}
    if torch_dtype not in dtypes:
        raise TypeError(f"from_torch supports float32 and float64 modules, got dtype {torch_dtype}; "
                        "convert it first with module.float() or module.double()")
    dtype = dtypes[torch_dtype]
    cls, settings, _, _ = _MODES[module.mode]
    H, L = module.hidden_size, module.num_layers
    nd = 2 if module.bidirectional else 1
    rng = as_generator(seed)

    def array(name):
        tensor = getattr(module, name)
        return tensor.detach().cpu().numpy()

    stack: list[Module] = []
    for i in range(L):
        D = module.input_size if i == 0 else nd * H
        layer = cls(H, input_size=D, return_sequences=True, kernel_initializer="pytorch",
                    recurrent_initializer="pytorch", bias_initializer="pytorch", seed=rng, dtype=dtype, **settings)
        wrapped = Bidirectional(layer) if module.bidirectional else layer
        for rec, suffix in zip(_directions(wrapped), _DIRECTIONS):
            tag = f"_l{i}{suffix}"
            b_ih, b_hh = (array("bias_ih" + tag), array("bias_hh" + tag)) if module.bias else (None, None)
            rec.set_weights(_rnnlab_weights(module.mode, H, array("weight_ih" + tag), array("weight_hh" + tag),
                                            b_ih, b_hh))
        if stack and module.dropout > 0:
            stack.append(Dropout(module.dropout, seed=rng, dtype=dtype))
        stack.append(wrapped)
    return stack[0] if len(stack) == 1 else Sequential(stack)


# ---------------------------------------------------------------------- rnnlab -> torch
def _torch_mode(layer: Recurrent, where: str) -> str:
    """The torch ``mode`` row of ``_MODES`` that ``layer`` matches, or a ValueError saying why none does."""
    cell_config = layer.cell.get_config()
    rows = [(mode, settings) for mode, (cls, settings, _, _) in _MODES.items() if isinstance(layer, cls)]
    if not rows:
        raise TypeError(f"to_torch expects {_ACCEPTED_RNNLAB}; {where} is a {type(layer).__name__}")
    for mode, settings in rows:
        if all(cell_config.get(key) == value for key, value in settings.items()):
            return mode
    key = next(iter(rows[0][1]))
    accepted = " or ".join(repr(settings[key]) for _, settings in rows)
    torch_name = _MODES[rows[0][0]][2]
    hint = (" (torch applies the reset gate after the recurrent product: n = tanh(W_in x + b_in + r * (W_hn h + b_hn)))"
            if isinstance(layer, GRU) else "")
    raise ValueError(f"to_torch: {where}, {type(layer).__name__}({key}={cell_config.get(key)!r}), has no PyTorch "
                     f"equivalent: torch.nn.{torch_name} supports {key}={accepted}{hint}")


def _layer_stack(module: Module) -> tuple[list[Module], list[str], float]:
    """The recurrent layers of ``module`` (each a layer or a Bidirectional), how to name each in an
    error message, and the inter-layer dropout rate."""
    if isinstance(module, (Recurrent, Bidirectional)):
        return [module], ["the module"], 0.0
    if not isinstance(module, Sequential):
        raise TypeError(f"to_torch expects {_ACCEPTED_RNNLAB}; got {type(module).__name__}")
    if not module.layers:
        raise ValueError("to_torch got an empty Sequential; it needs at least one recurrent layer")
    layers: list[Module] = []
    names: list[str] = []
    gaps: list[float] = []  # the dropout rate after each recurrent layer but the last
    pending: float | None = None
    for i, layer in enumerate(module.layers):
        if isinstance(layer, (Recurrent, Bidirectional)):
            if layers:
                gaps.append(pending or 0.0)
            layers.append(layer)
            names.append(f"layer {i}")
            pending = None
        elif isinstance(layer, Dropout):
            if not layers or i == len(module.layers) - 1 or pending is not None:
                raise ValueError(f"to_torch: Dropout at index {i} is not between two recurrent layers; torch applies "
                                 "dropout only to the outputs of each recurrent layer except the last")
            pending = layer.rate
        else:
            raise TypeError(f"to_torch expects {_ACCEPTED_RNNLAB}; layer {i} of the Sequential is a "
                            f"{type(layer).__name__}")
    if len(set(gaps)) > 1:
        raise ValueError(f"to_torch: torch uses one dropout rate between all layers, but the Sequential's "
                         f"inter-layer dropout rates are {gaps} (0.0 where there is no Dropout)")
    return layers, names, (gaps[0] if gaps else 0.0)


def to_torch(module: Module):
    """Build the PyTorch module (``batch_first=True``) holding the weights of an rnnlab recurrent stack.

    Parameters
    ----------
    module : SimpleRNN, LSTM, GRU, Bidirectional or Sequential
        A built recurrent layer (activation tanh or relu for ``SimpleRNN``, candidate activation tanh
        for ``LSTM``, ``reset_after=True`` for ``GRU``), a ``Bidirectional`` of one (merge
        ``"concat"``), or a ``Sequential`` of such layers, all of the same kind, hidden size, dtype
        and directionality, each layer's input size being the previous layer's output size, every
        layer but the last with ``return_sequences=True``. A ``Dropout`` may sit between
        consecutive recurrent layers if all of them have the same rate (torch's ``dropout``).

    Returns
    -------
    torch.nn.RNN, torch.nn.LSTM or torch.nn.GRU
        ``batch_first=True``, ``bias=True``, float32 or float64 as ``module``, on the CPU. Its
        ``output`` equals the rnnlab output when the last layer has ``return_sequences=True``
        (otherwise the rnnlab output is the last step of each direction's processing: for an
        unpadded batch ``h_n[-1]``, or ``concat(h_n[-2], h_n[-1])`` when bidirectional).
        ``return_state``, ``stateful`` and initialisers are call conventions, not weights, and are
        not carried over.

    Raises
    ------
    TypeError
        If ``module`` (or a layer of the Sequential) is not one of the accepted types.
    ValueError
        For a configuration torch cannot express: ``GRU(reset_after=False)``, a ``SimpleRNN`` with
        activation sigmoid or linear, an LSTM with relu candidate, a lone ``go_backwards`` layer,
        a merge mode other than concat, unbuilt layers, inconsistent layers.

    Notes
    -----
    Per layer ``l`` and direction (suffix ``""``, or ``"_reverse"`` for ``Bidirectional.backward_layer``)::

        weight_ih_l{l} = U     weight_hh_l{l} = W     bias_ih_l{l} = b
        bias_hh_l{l}   = 0                           (RNN, LSTM)
        bias_hh_l{l}   = [0; 0; b_hn]                (GRU)

    so that ``bias_ih + bias_hh`` is rnnlab's bias exactly and ``from_torch(to_torch(m))`` returns
    bitwise-equal parameters.
    """
    torch = _import_torch()
    layers, names, dropout = _layer_stack(module)
    bidirectional = isinstance(layers[0], Bidirectional)
    first = _directions(layers[0])[0]
    mode = _torch_mode(first, names[0])
    H, dtype = first.hidden_size, first.dtype
    nd = 2 if bidirectional else 1
    for i, (layer, where) in enumerate(zip(layers, names)):
        if isinstance(layer, Bidirectional) != bidirectional:
            kinds = {True: "a Bidirectional", False: "a single direction"}
            raise ValueError(f"to_torch: {where} is {kinds[not bidirectional]} but {names[0]} is "
                             f"{kinds[bidirectional]}; torch's bidirectional flag covers every layer")
        if isinstance(layer, Bidirectional):
            if layer.merge_mode != "concat":
                raise ValueError(f"to_torch: {where} is a Bidirectional with merge_mode={layer.merge_mode!r}; "
                                 "torch concatenates the two directions (merge_mode='concat')")
            if layer.forward_layer.go_backwards:
                raise ValueError(f"to_torch: {where} is a Bidirectional whose first layer has go_backwards=True; "
                                 "torch's first direction reads forward in time")
        elif layer.go_backwards:
            raise ValueError(f"to_torch: {where} has go_backwards=True; torch reads a single direction forward in "
                             "time (a reversed direction exists only inside bidirectional=True)")
        for rec in _directions(layer):
            if _torch_mode(rec, where) != mode:
                raise ValueError(f"to_torch: {where} is {type(rec).__name__}({rec.cell.get_config()}) but {names[0]} "
                                 f"is {type(first).__name__}({first.cell.get_config()}); torch stacks one kind of cell")
            if not rec.built:
                raise ValueError(f"to_torch: {where} has no weights yet (input_size unknown); build it first, "
                                 "e.g. pass input_size= or call it on data")
            if rec.hidden_size != H:
                raise ValueError(f"to_torch: {where} has hidden_size={rec.hidden_size} but {names[0]} has "
                                 f"hidden_size={H}; torch stacks layers of one hidden size")
            if rec.dtype != dtype:
                raise ValueError(f"to_torch: {where} has dtype {rec.dtype} but {names[0]} has dtype {dtype}")
            if i > 0 and rec.input_size != nd * H:
                raise ValueError(f"to_torch: {where} has input_size={rec.input_size}, expected {nd * H} "
                                 f"(the output size of {names[i - 1]})")
        if i < len(layers) - 1 and not layer.return_sequences:
            raise ValueError(f"to_torch: {where} has return_sequences=False but feeds {names[i + 1]}; every layer "
                             "but the last must return sequences")

    _, _, torch_name, torch_kwargs = _MODES[mode]
    torch_module = getattr(torch.nn, torch_name)(
        first.input_size, H, num_layers=len(layers), bias=True, batch_first=True, dropout=dropout,
        bidirectional=bidirectional, dtype={"float32": torch.float32, "float64": torch.float64}[dtype.name],
        **torch_kwargs)
    with torch.no_grad():
        for i, layer in enumerate(layers):
            for rec, suffix in zip(_directions(layer), _DIRECTIONS):
                for name, value in _torch_weights(rec).items():
                    getattr(torch_module, f"{name}_l{i}{suffix}").copy_(torch.from_numpy(np.ascontiguousarray(value)))
    return torch_module
