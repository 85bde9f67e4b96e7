"""Keras 3 models in and out: ``from_keras``/``to_keras`` (Keras objects) and ``load_keras``/``save_keras``
(``.keras`` files, through h5py alone: Keras need not be installed).

Keras is optional (``pip install keras==3.15.1``), and so is h5py (``pip install 'rnnlab[keras]'``); each is
imported only when a function needs it.

One path serves every direction: a Keras layer is read as its *spec*, the triple ``(class_name, config,
weights)`` that both ``layer.get_config()`` with the layer's variables and a ``.keras`` file's
``config.json`` with its HDF5 weights give, and an rnnlab module is written as one. The weight map of one
recurrent layer (G gate blocks of H units; Keras multiplies ``x @ kernel``, rnnlab ``U @ x``)::

    rnnlab               Keras (gate blocks in Keras's order)
    U    (G*H, D)        kernel.T             kernel (D, G*H)
    W    (G*H, H)        recurrent_kernel.T   recurrent_kernel (H, G*H)
    b    (G*H,)          bias                 (SimpleRNN, LSTM, GRU reset_after=False)
    b    (3H,)           bias[0] + [bias[1][:2H]; 0]     (GRU reset_after=True: bias (2, 3H), input then recurrent)
    b_hn (H,)            bias[1][2H:]                    (GRU reset_after=True: inside r * (W_n h + b_hn))

LSTM gates are i, f, c, o in both (rnnlab calls c g); Keras's GRU blocks are z, r, h and rnnlab's r, z, n,
so the first two blocks swap. ``Dense``: ``V = kernel.T``, ``c = bias``; ``Embedding``: ``E = embeddings``.
As with PyTorch, Keras's reset-after GRU keeps two biases where only their sum matters outside the reset
product, so rnnlab -> Keras -> rnnlab is bitwise and Keras -> rnnlab -> Keras keeps every weight and each
summed bias bitwise (``to_keras`` writes the recurrent bias as ``[0; 0; b_hn]``).
"""

from __future__ import annotations

import datetime
import io
import json
import warnings
import zipfile
from pathlib import Path

import numpy as np

from rnnlab._files import write_atomic
from rnnlab._validation import optional_module
from rnnlab.nn.bidirectional import MERGE_MODES, Bidirectional
from rnnlab.nn.functional import ACTIVATIONS
from rnnlab.nn.layers import Dense, Dropout, Embedding
from rnnlab.nn.module import Module
from rnnlab.nn.recurrent import GRU, LSTM, Recurrent, SimpleRNN
from rnnlab.nn.sequential import Sequential

#: the Keras version the interop is tested with (what the install hint names)
KERAS_REQUIREMENT = "keras==3.15.1"
#: the h5py version that reads and writes ``.keras`` files' weights
H5PY_REQUIREMENT = "h5py==3.16.0"
KERAS_VERSION = KERAS_REQUIREMENT.split("==")[1]  # written into the metadata of a .keras file

_RECURRENT = {"SimpleRNN": SimpleRNN, "LSTM": LSTM, "GRU": GRU}
_GATE_ORDER = {"SimpleRNN": (0,), "LSTM": (0, 1, 2, 3), "GRU": (1, 0, 2)}  # rnnlab block k = Keras block order[k]
# Keras names each layer's group in a .keras weights file by its class in snake case (``_1``, ``_2`` ... after)
_SNAKE = {"SimpleRNN": "simple_rnn", "LSTM": "lstm", "GRU": "gru", "Bidirectional": "bidirectional",
          "Embedding": "embedding", "Dense": "dense", "Dropout": "dropout"}
_ACCEPTED = ("a SimpleRNN, LSTM, GRU, Bidirectional (of one of those), Embedding, Dense or Dropout layer, or a "
             "Sequential of them")
_FLAGS = ("return_sequences", "return_state", "go_backwards", "stateful")


def _import_keras():
    """Import Keras 3, or explain how to install it."""
    return optional_module("keras", "rnnlab.interop.from_keras and to_keras",
                           f"`pip install {KERAS_REQUIREMENT}` (and a backend, e.g. torch)")


def _import_h5py():
    """Import h5py, or explain how to install it."""
    return optional_module("h5py", "reading and writing .keras files",
                           f"`pip install {H5PY_REQUIREMENT}` (or `pip install 'rnnlab[keras]'`)")


# ---------------------------------------------------------------------- gate blocks and weights
def _reorder(a: np.ndarray, H: int, order: tuple[int, ...]) -> np.ndarray:
    """The gate blocks of ``a`` (axis 0, G*H long) permuted: block k of the result is block ``order[k]``.
    Every order used here is its own inverse, so the same call maps both ways."""
    return np.concatenate([a[k * H:(k + 1) * H] for k in order], axis=0)


def _recurrent_params(kind: str, H: int, weights: list[np.ndarray], reset_after: bool) -> dict[str, np.ndarray]:
    """rnnlab's ``U, W, b[, b_hn]`` from Keras's ``[kernel, recurrent_kernel(, bias)]`` (no bias: zeros)."""
    order = _GATE_ORDER[kind]
    kernel, recurrent_kernel = weights[0], weights[1]
    params = {"U": _reorder(kernel.T, H, order), "W": _reorder(recurrent_kernel.T, H, order)}
    bias = weights[2] if len(weights) > 2 else np.zeros((2, kernel.shape[1]) if reset_after else kernel.shape[1],
                                                       dtype=kernel.dtype)
    if kind == "GRU" and reset_after:
        b = _reorder(bias[0], H, order)  # (3H,)
        b_h = _reorder(bias[1], H, order)  # (3H,)
        b[:2 * H] += b_h[:2 * H]  # r and z: the two biases only appear summed
        params["b"] = b
        params["b_hn"] = b_h[2 * H:].copy()  # (H,)
    else:
        params["b"] = _reorder(bias, H, order)
    return params


def _keras_recurrent_weights(kind: str, layer: Recurrent) -> list[np.ndarray]:
    """Keras's ``[kernel, recurrent_kernel, bias]`` from an rnnlab layer."""
    p, H = layer.params, layer.hidden_size
    order = _GATE_ORDER[kind]
    weights = [_reorder(p["U"], H, order).T.copy(), _reorder(p["W"], H, order).T.copy()]
    if "b_hn" in p:
        b_h = np.zeros_like(p["b"])  # (3H,)
        b_h[2 * H:] = p["b_hn"]
        weights.append(np.stack([_reorder(p["b"], H, order), _reorder(b_h, H, order)]))  # (2, 3H)
    else:
        weights.append(_reorder(p["b"], H, order))
    return weights


# ---------------------------------------------------------------------- Keras spec -> rnnlab
def _dtype(config: dict, where: str) -> str:
    """``"float32"`` or ``"float64"`` from a Keras layer config's ``dtype`` (a name or a DTypePolicy)."""
    dtype = config.get("dtype") or "float32"
    if isinstance(dtype, dict):
        dtype = dtype.get("config", {}).get("name", "float32")
    if dtype not in ("float32", "float64"):
        raise ValueError(f"{where} has dtype {dtype!r}; rnnlab computes in float32 or float64")
    return dtype


def _activation(config: dict, key: str, where: str) -> str:
    value = config.get(key)
    if value is None:
        return "linear"
    if not isinstance(value, str):
        raise ValueError(f"{where} has a custom {key} ({value!r}); rnnlab supports {', '.join(ACTIVATIONS)}")
    return value


def _require(config: dict, key: str, value: str, where: str, why: str) -> None:
    got = _activation(config, key, where)
    if got != value:
        raise ValueError(f"{where} has {key}={got!r}, which rnnlab cannot express: {why}")


def _recurrent_from(kind: str, config: dict, weights: list[np.ndarray], where: str) -> Recurrent:
    H = config["units"]
    settings: dict = {}
    if kind == "SimpleRNN":
        activation = _activation(config, "activation", where)
        if activation not in ACTIVATIONS:
            raise ValueError(f"{where} has activation={activation!r}; rnnlab's SimpleRNN supports "
                             f"{', '.join(ACTIVATIONS)}")
        settings["activation"] = activation
    else:
        _require(config, "recurrent_activation", "sigmoid", where, "rnnlab's gates are logistic sigmoids")
        _require(config, "activation", "tanh", where,
                 "rnnlab's LSTM and GRU use tanh for the candidate and (LSTM) for h = o * tanh(c)")
    reset_after = kind == "GRU" and config.get("reset_after", True)
    if kind == "GRU":
        settings["reset_after"] = reset_after
    dropped = {key: config[key] for key in ("dropout", "recurrent_dropout") if config.get(key)}
    if dropped:
        warnings.warn(f"{where} has {dropped}: rnnlab's recurrent layers have no input or recurrent dropout, so "
                      "the converted layer computes what the Keras layer computes in inference, and trains "
                      "without that dropout", UserWarning, stacklevel=4)
    flags = {key: bool(config.get(key, False)) for key in _FLAGS}
    layer = _RECURRENT[kind](H, input_size=weights[0].shape[0], dtype=_dtype(config, where), name=config.get("name"),
                             **flags, **settings)
    layer.set_weights(_recurrent_params(kind, H, weights, reset_after))
    return layer


def _from_spec(class_name: str, config: dict, weights: list[np.ndarray], where: str) -> Module:
    """The rnnlab module of one Keras layer, from its class name, config and weights (Keras's order)."""
    weights = [np.asarray(w) for w in weights]
    counts = {"Bidirectional": (4, 6), "Embedding": (1,), "Dense": (1, 2), "Dropout": (0,)}
    expected = (2, 3) if class_name in _RECURRENT else counts.get(class_name)
    if expected is not None and len(weights) not in expected:
        raise ValueError(f"{where}: a Keras {class_name} has {' or '.join(map(str, expected))} weight arrays, "
                         f"got {len(weights)}")
    if class_name in _RECURRENT:
        return _recurrent_from(class_name, config, weights, where)
    if class_name == "Bidirectional":
        inner = config["layer"]
        merge_mode = config.get("merge_mode", "concat")
        if merge_mode not in MERGE_MODES:
            raise ValueError(f"{where} has merge_mode={merge_mode!r}; rnnlab supports "
                             f"{', '.join(map(repr, MERGE_MODES))}")
        if inner["class_name"] not in _RECURRENT:
            raise TypeError(f"{where} wraps a {inner['class_name']}; rnnlab's Bidirectional wraps a SimpleRNN, LSTM "
                            "or GRU")
        backward = config.get("backward_layer")
        if backward is not None:
            expected = {**inner["config"], "go_backwards": not inner["config"].get("go_backwards", False)}
            differ = sorted(k for k in set(expected) | set(backward["config"])
                            if k not in ("name", "seed") and expected.get(k) != backward["config"].get(k)
                            and not k.endswith("initializer"))
            if backward["class_name"] != inner["class_name"] or differ:
                raise ValueError(f"{where} has a backward layer configured unlike its forward layer "
                                 f"({differ or 'class'}); rnnlab's backward layer is a copy of the forward one "
                                 "reading in reverse")
        half = len(weights) // 2
        forward_layer = _recurrent_from(inner["class_name"], inner["config"], weights[:half], where + " (forward)")
        layer = Bidirectional(forward_layer, merge_mode, name=config.get("name"))
        reset_after = inner["class_name"] == "GRU" and inner["config"].get("reset_after", True)
        layer.backward_layer.set_weights(_recurrent_params(inner["class_name"], forward_layer.hidden_size,
                                                           weights[half:], reset_after))
        return layer
    if class_name == "Embedding":
        (table,) = weights
        return _with_weights(Embedding(table.shape[0], table.shape[1], mask_zero=bool(config.get("mask_zero", False)),
                                       dtype=_dtype(config, where), name=config.get("name")), {"E": table})
    if class_name == "Dense":
        activation = _activation(config, "activation", where)
        if activation not in ACTIVATIONS:
            hint = (" (for softmax: convert a copy with a linear output layer and apply softmax to the logits; "
                    "rnnlab's losses take logits)") if activation == "softmax" else ""
            raise ValueError(f"{where} has activation={activation!r}; rnnlab's Dense supports "
                             f"{', '.join(ACTIVATIONS)}{hint}")
        kernel = weights[0]
        use_bias = len(weights) > 1
        layer = Dense(kernel.shape[1], activation, input_size=kernel.shape[0], use_bias=use_bias,
                      dtype=_dtype(config, where), name=config.get("name"))
        return _with_weights(layer, {"V": kernel.T, **({"c": weights[1]} if use_bias else {})})
    if class_name == "Dropout":
        if config.get("noise_shape") is not None:
            raise ValueError(f"{where} has noise_shape={config['noise_shape']!r}; rnnlab's Dropout drops every "
                             "element independently")
        return Dropout(float(config["rate"]), dtype=_dtype(config, where), name=config.get("name"))
    raise TypeError(f"from_keras: {where} is a Keras {class_name}; rnnlab converts {_ACCEPTED}")


def _with_weights(module: Module, weights: dict) -> Module:
    module.set_weights(weights)
    return module


def _sequential_from(specs: list[tuple[str, dict, list[np.ndarray]]], name: str | None) -> Sequential:
    layers = [_from_spec(class_name, config, weights, f"layer {i} ({config.get('name', class_name)})")
              for i, (class_name, config, weights) in enumerate(specs)]
    return Sequential(layers, name=name)


def from_keras(layer_or_model) -> Module:
    """Build the rnnlab module computing what a Keras 3 layer or ``Sequential`` model computes.

    Parameters
    ----------
    layer_or_model : keras.layers.Layer or keras.Sequential
        ``SimpleRNN`` (activation tanh, relu, sigmoid or linear), ``LSTM`` and ``GRU`` (tanh and
        sigmoid; ``reset_after`` True or False), ``Bidirectional`` of one (every merge mode),
        ``Embedding`` (``mask_zero``), ``Dense`` (linear, tanh, relu or sigmoid), ``Dropout``, or a
        ``Sequential`` of these; float32 or float64. ``return_sequences``, ``return_state``,
        ``go_backwards`` and ``stateful`` carry over.

    Returns
    -------
    Module
        The matching rnnlab layer, or a ``Sequential`` (its layers in order, the input layer left out),
        with the Keras weights (see the module docstring for the map). Its outputs and final states
        equal Keras's to round-off, with the same masks, as are the gradients of a loss.

    Raises
    ------
    TypeError
        For a layer rnnlab does not convert, or a model that is not a ``Sequential``.
    ValueError
        For an option rnnlab cannot express: an activation outside the lists above (e.g. a softmax
        ``Dense``), LSTM/GRU ``recurrent_activation`` other than sigmoid, a ``Bidirectional`` whose
        backward layer is configured unlike its forward layer, ``Dropout(noise_shape=...)``, a dtype
        other than float32/float64.

    Notes
    -----
    Not carried over, because they are not weights: initialisers, regularisers, constraints, ``unroll``
    and ``seed``. A recurrent layer's ``dropout``/``recurrent_dropout`` have no rnnlab counterpart: the
    converted layer computes what the Keras layer computes in inference, and a UserWarning says so.
    rnnlab zeroes the outputs of masked steps (Keras's ``zero_output_for_mask=True``, which
    ``Bidirectional`` always sets); a lone Keras layer with ``return_sequences=True`` and the default
    ``zero_output_for_mask=False`` repeats the last valid output there instead, so the two agree on
    every unmasked step.
    """
    keras = _import_keras()
    if isinstance(layer_or_model, keras.Sequential):
        specs = [_keras_spec(layer) for layer in layer_or_model.layers]
        return _sequential_from(specs, layer_or_model.name)
    if isinstance(layer_or_model, keras.Model):
        raise TypeError(f"from_keras converts a keras.Sequential or a single layer, got a "
                        f"{type(layer_or_model).__name__} model")
    if not isinstance(layer_or_model, keras.layers.Layer):
        raise TypeError(f"from_keras expects a Keras layer or Sequential model, got {type(layer_or_model).__name__}")
    class_name, config, weights = _keras_spec(layer_or_model)
    return _from_spec(class_name, config, weights, f"the layer ({config.get('name', class_name)})")


def _numpy(value) -> np.ndarray:
    """A backend tensor as a NumPy array (torch's directly: NumPy 2's ``np.array(tensor)`` warns)."""
    if hasattr(value, "detach"):
        return value.detach().cpu().numpy().copy()
    return np.array(value)


def _keras_spec(layer) -> tuple[str, dict, list[np.ndarray]]:
    """``(class_name, config, weights)`` of a live Keras layer: the trainable variables only (a stateful layer's
    carried state is not a weight), in the order a ``.keras`` file stores them."""
    class_name = type(layer).__name__
    if not layer.built:
        raise ValueError(f"from_keras: the Keras layer {layer.name!r} is not built (call it once, or build it)")
    if class_name == "Bidirectional":
        owners = [layer.forward_layer.cell, layer.backward_layer.cell]
    elif class_name in _RECURRENT:
        owners = [layer.cell]
    else:
        owners = [layer]
    weights = [_numpy(v.value) for owner in owners for v in owner.trainable_weights]
    return class_name, layer.get_config(), weights


# ---------------------------------------------------------------------- rnnlab -> Keras spec
def _policy(dtype: str) -> dict:
    return {"module": "keras", "class_name": "DTypePolicy", "config": {"name": dtype}, "registered_name": None}


def _serialized(class_name: str, config: dict) -> dict:
    return {"module": "keras.layers", "class_name": class_name, "config": config, "registered_name": None}


def _kind(module: Module) -> str | None:
    """``"SimpleRNN"``, ``"LSTM"`` or ``"GRU"`` for exactly those rnnlab classes, else None."""
    return next((kind for kind, cls in _RECURRENT.items() if type(module) is cls), None)


def _recurrent_spec(layer: Recurrent, name: str, where: str) -> tuple[str, dict, list[np.ndarray]]:
    kind = _kind(layer)
    cell = layer.cell.get_config()
    config = {"name": name, "trainable": True, "dtype": _policy(np.dtype(layer.dtype).name),
              **{key: getattr(layer, key) for key in _FLAGS}, "unroll": False,
              "zero_output_for_mask": layer.return_sequences,  # as Keras's Bidirectional sets it
              "units": layer.hidden_size, "use_bias": True, "dropout": 0.0, "recurrent_dropout": 0.0}
    if kind == "SimpleRNN":
        config["activation"] = cell["activation"]
    else:
        if cell.get("candidate_activation", "tanh") != "tanh":
            raise ValueError(f"to_keras: {where}, LSTM(candidate_activation={cell['candidate_activation']!r}), has no "
                             "Keras equivalent: Keras's LSTM activation also gives h = o * activation(c), rnnlab's "
                             "h = o * tanh(c) (only the tanh candidate converts)")
        config.update(activation="tanh", recurrent_activation="sigmoid")
        if kind == "GRU":
            config["reset_after"] = cell["reset_after"]
    return kind, config, _keras_recurrent_weights(kind, layer)


def _spec_of(module: Module, name: str, where: str) -> tuple[str, dict, list[np.ndarray]]:
    """``(class_name, config, weights)`` of the Keras layer computing what an rnnlab module computes."""
    if not module.built:
        raise ValueError(f"to_keras: {where} is not built (give input_size, or call it once)")
    common = {"name": name, "trainable": True, "dtype": _policy(np.dtype(module.dtype).name)}
    if _kind(module):
        return _recurrent_spec(module, name, where)
    if isinstance(module, Bidirectional) and _kind(module.forward_layer):
        kind, inner, weights = _recurrent_spec(module.forward_layer, name, where)
        weights = weights + _keras_recurrent_weights(kind, module.backward_layer)
        return "Bidirectional", {**common, "layer": _serialized(kind, inner), "merge_mode": module.merge_mode}, weights
    if type(module) is Embedding:
        E = module.params["E"]
        return "Embedding", {**common, "input_dim": module.vocab_size, "output_dim": module.dim,
                             "mask_zero": module.mask_zero}, [E.copy()]
    if type(module) is Dense:
        p = module.params
        config = {**common, "units": module.units, "activation": module.activation, "use_bias": module.use_bias}
        return "Dense", config, [p["V"].T.copy()] + ([p["c"].copy()] if "c" in p else [])
    if type(module) is Dropout:
        return "Dropout", {**common, "rate": module.rate, "seed": None, "noise_shape": None}, []
    raise TypeError(f"to_keras: {where} is a {type(module).__name__}; rnnlab converts {_ACCEPTED}")


def _input_size(layer: Module) -> int | None:
    if isinstance(layer, Bidirectional):
        layer = layer.forward_layer
    return getattr(layer, "input_size", None)


def _model_spec(module: Module, batch_size: int | None):
    """The Keras ``Sequential`` config (as in a ``.keras`` file's ``config.json``) of an rnnlab module, and
    ``(class_name, config, weights)`` of each of its layers."""
    if batch_size is not None:
        if isinstance(batch_size, bool) or not isinstance(batch_size, int):
            raise TypeError(f"batch_size must be an int or None, got {type(batch_size).__name__} {batch_size!r}")
        if batch_size < 1:
            raise ValueError(f"batch_size must be positive, got {batch_size}")
    if isinstance(module, Sequential):
        if not module.layers:
            raise ValueError("to_keras got an empty Sequential")
        layers, names, wheres = module.layers, module.layer_names(), [f"layer {i}" for i in range(len(module.layers))]
        model_name = module.name or "sequential"
    else:
        layers, wheres, model_name = [module], ["the module"], "sequential"
        names = [module.name or _SNAKE.get(type(module).__name__, "layer")]
    specs = [_spec_of(layer, name, where) for layer, name, where in zip(layers, names, wheres)]
    stateful = [where for (_, config, _), where in zip(specs, wheres)
                if config.get("stateful") or config.get("layer", {}).get("config", {}).get("stateful")]
    if stateful and batch_size is None:
        raise ValueError(f"to_keras: {stateful[0]} is stateful, and a stateful Keras layer needs a fixed batch size: "
                         "pass batch_size=")
    recurrent = any(class_name in _RECURRENT or class_name == "Bidirectional" for class_name, _, _ in specs)
    if isinstance(layers[0], Embedding):
        batch_shape, input_dtype = [batch_size, None], "int32"
    else:
        D = next((_input_size(layer) for layer in layers if _input_size(layer) is not None), None)
        batch_shape = [batch_size, None, D] if recurrent else [batch_size, D]
        input_dtype = np.dtype(layers[0].dtype).name
    input_layer = {"module": "keras.layers", "class_name": "InputLayer",
                   "config": {"batch_shape": batch_shape, "dtype": input_dtype, "sparse": False, "name": "input_layer"},
                   "registered_name": None}
    config = {"module": "keras", "class_name": "Sequential",
              "config": {"name": model_name, "trainable": True, "dtype": _policy(np.dtype(layers[0].dtype).name),
                         "layers": [input_layer] + [_serialized(c, cfg) for c, cfg, _ in specs]},
              "registered_name": None, "build_config": {"input_shape": batch_shape}}
    return config, specs


def _weight_owners(layer) -> list:
    """The objects whose trainable variables are a Keras layer's weights, in a ``.keras`` file's order."""
    class_name = type(layer).__name__
    if class_name == "Bidirectional":
        return [layer.forward_layer.cell, layer.backward_layer.cell]
    return [layer.cell] if class_name in _RECURRENT else [layer]


def to_keras(module: Module, *, batch_size: int | None = None):
    """Build the Keras 3 layer or ``Sequential`` model holding the weights of an rnnlab module.

    Parameters
    ----------
    module : Module
        A built ``SimpleRNN``, ``LSTM`` (tanh candidate), ``GRU``, ``Bidirectional`` of one (any merge
        mode), ``Embedding``, ``Dense`` or ``Dropout``, or a ``Sequential`` of these.
    batch_size : int, optional
        The fixed batch size a ``stateful`` layer needs in Keras (required then; otherwise the
        batch axis stays dynamic).

    Returns
    -------
    keras.layers.Layer or keras.Sequential
        A Sequential for a Sequential (an ``InputLayer`` first: int ids for an ``Embedding``, else
        ``(batch, time, D)``), else the one layer, built. Every Keras recurrent layer gets
        ``zero_output_for_mask=return_sequences`` (rnnlab's masked outputs are zeros; with
        ``return_sequences=False`` Keras would return zeros for a right-padded row), ``use_bias=True`` and the
        weight map in the module docstring; ``from_keras(to_keras(m))`` has ``m``'s parameters bitwise.

    Raises
    ------
    TypeError
        For a module rnnlab does not convert (``OneHot``, ``Seq2Seq``, ...).
    ValueError
        For what Keras cannot express (an LSTM with a relu candidate), an unbuilt module, or a
        stateful layer without ``batch_size``.
    """
    keras = _import_keras()
    config, specs = _model_spec(module, batch_size)
    model = keras.saving.deserialize_keras_object(config)
    for layer, (_, _, weights) in zip(model.layers, specs):
        variables = [v for owner in _weight_owners(layer) for v in owner.trainable_weights]
        for variable, value in zip(variables, weights, strict=True):
            variable.assign(value)
    return model if isinstance(module, Sequential) else model.layers[0]


# ---------------------------------------------------------------------- .keras files
_CONFIG, _METADATA, _WEIGHTS = "config.json", "metadata.json", "model.weights.h5"


def _var_paths(class_name: str) -> tuple[str, ...]:
    """The groups, under a layer's group in the weights file, that hold its weights (datasets "0", "1", ...)."""
    if class_name == "Bidirectional":
        return ("forward_layer/cell/vars", "backward_layer/cell/vars")
    return ("cell/vars",) if class_name in _RECURRENT else ("vars",)


def _unique(name: str, used: dict[str, int]) -> str:
    """Keras's naming of a layer's group: ``dense``, then ``dense_1``, ``dense_2`` ..."""
    count = used.get(name, 0)
    used[name] = count + 1
    return name if count == 0 else f"{name}_{count}"


def load_keras(path) -> Sequential:
    """Read a Keras 3 ``.keras`` file (a ``Sequential`` of the layers :func:`from_keras` converts) into an
    rnnlab ``Sequential``, with h5py and without Keras.

    The file is a zip of ``config.json`` (the model's config) and ``model.weights.h5``, where layer k's
    weights are the datasets ``layers/<class in snake case, numbered>/[cell/]vars/<i>``. Raises a
    ValueError naming the file when it is not such a zip, and the errors of :func:`from_keras` for
    layers or options rnnlab cannot express.
    """
    h5py = _import_h5py()
    path = Path(path)
    try:
        with zipfile.ZipFile(path) as archive:
            names = set(archive.namelist())
            missing = sorted({_CONFIG, _WEIGHTS} - names)
            if missing:
                raise ValueError(f"'{path}' is not a Keras 3 .keras file: it lacks {', '.join(missing)}")
            config = json.loads(archive.read(_CONFIG))
            weights_bytes = archive.read(_WEIGHTS)
    except zipfile.BadZipFile:
        raise ValueError(f"'{path}' is not a Keras 3 .keras file (not a zip archive)") from None
    if config.get("class_name") != "Sequential":
        raise TypeError(f"load_keras reads Sequential models; '{path}' holds a {config.get('class_name')!r} model")
    used: dict[str, int] = {}
    specs = []
    with h5py.File(io.BytesIO(weights_bytes), "r") as store:
        for layer in config["config"]["layers"]:
            class_name = layer["class_name"]
            if class_name == "InputLayer":
                continue
            group = f"layers/{_unique(_SNAKE.get(class_name, class_name.lower()), used)}"
            weights = []
            for sub in _var_paths(class_name):
                node = store.get(f"{group}/{sub}")
                if node is not None:
                    weights.extend(np.asarray(node[key]) for key in sorted(node, key=int))
            specs.append((class_name, layer["config"], weights))
    return _sequential_from(specs, config["config"].get("name"))


def save_keras(module: Module, path, *, batch_size: int | None = None) -> Path:
    """Write an rnnlab module as a ``.keras`` file that Keras 3 loads (``keras.saving.load_model``), with h5py
    and without Keras; the file is written to a temporary name and renamed.

    ``module`` and ``batch_size`` are as for :func:`to_keras`; a lone layer is saved as a one-layer
    ``Sequential`` (Keras saves models, not layers), which :func:`load_keras` reads back. Returns the path.
    """
    h5py = _import_h5py()
    config, specs = _model_spec(module, batch_size)
    buffer = io.BytesIO()
    with h5py.File(buffer, "w") as store:
        layers = store.create_group("layers")
        used: dict[str, int] = {}
        for class_name, layer_config, weights in specs:
            group = layers.create_group(_unique(_SNAKE[class_name], used))
            group.create_group("vars").attrs["name"] = layer_config["name"]
            paths = _var_paths(class_name)
            per_path = len(weights) // len(paths)
            for k, sub in enumerate(paths):
                node = group.require_group(sub)
                if sub.endswith("cell/vars"):
                    inner = layer_config.get("layer", {"class_name": class_name})["class_name"]
                    node.attrs["name"] = f"{_SNAKE[inner]}_cell"
                    if sub != "cell/vars":  # a Bidirectional's direction: its own (empty) vars group
                        direction = sub.split("/")[0]
                        group[direction].create_group("vars").attrs["name"] = (
                            f"{direction.split('_')[0]}_{layer_config['name']}")
                for i, value in enumerate(weights[k * per_path:(k + 1) * per_path]):
                    node.create_dataset(str(i), data=value)
        store.create_group("vars").attrs["name"] = config["config"]["name"]
    metadata = {"keras_version": KERAS_VERSION,
                "date_saved": datetime.datetime.now(datetime.UTC).strftime("%Y-%m-%d@%H:%M:%S")}
    archive_bytes = io.BytesIO()
    with zipfile.ZipFile(archive_bytes, "w", compression=zipfile.ZIP_STORED) as archive:
        archive.writestr(_METADATA, json.dumps(metadata))
        archive.writestr(_CONFIG, json.dumps(config))
        archive.writestr(_WEIGHTS, buffer.getvalue())
    path = Path(path)
    write_atomic(path, archive_bytes.getvalue())
    return path
