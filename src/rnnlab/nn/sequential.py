"""Models: :class:`Sequential` (a stack of layers with Keras-style summary, fit, evaluate and predict) and
:func:`stack` (a deep recurrent stack); ``fit`` takes :func:`rnnlab.nn.step.train_step` per batch."""

from __future__ import annotations

import re
from collections.abc import Mapping

import numpy as np

from rnnlab import optim
from rnnlab._errors import TrainingDiverged
from rnnlab._validation import as_generator, check_positive_int
from rnnlab.nn import losses
from rnnlab.nn.bidirectional import Bidirectional
from rnnlab.nn.layers import Dropout, Embedding, LockedDropout, OneHot
from rnnlab.nn.losses import BinaryCrossEntropyWithLogits, SoftmaxCrossEntropy
from rnnlab.nn.module import Module, registered
from rnnlab.nn.recurrent import Recurrent
from rnnlab.nn.state import StateMap, check_state_keys, final_states, sub_states
from rnnlab.nn.step import StepDiverged, train_step


def _snake(name: str) -> str:
    # a digit ends a word only before a capitalised word: Seq2Seq -> seq2_seq, GlobalMaxPool1D -> global_max_pool1d
    return re.sub(r"(?<=[a-z])(?=[A-Z])|(?<=[0-9])(?=[A-Z][a-z])|(?<=[A-Z])(?=[A-Z][a-z])", "_", name).lower()


class Sequential(Module):
    """Layers applied one after another; the mask flows with the data.

    ``Embedding(mask_zero=True)`` creates a mask, recurrent layers with ``return_sequences`` pass it on,
    a recurrent layer returning only its last step drops it; ``Dense``/``Dropout`` pass it through.
    ``initial_state`` goes to the first recurrent layer, or is a state map for every recurrent layer
    (see :meth:`forward`); only the last layer may use ``return_state``.
    Parameters are named ``"<index>.<name>"`` (``"0.U"``, ``"1.forward.W"``).

    Examples
    --------
    >>> model = Sequential([SimpleRNN(3, input_size=5), Dense(1)])
    >>> model.count_params()   # 3*5 + 3*3 + 3  +  3*1 + 1
    31
    """

    takes_state_map = True

    def __init__(self, layers: list[Module] | tuple[Module, ...] = (), *, name: str | None = None):
        super().__init__(name=name)
        self.layers: list[Module] = []
        self.output_mask = None
        self.input_shape: tuple | None = None
        if isinstance(layers, Module) or not isinstance(layers, (list, tuple)):
            raise TypeError(f"layers must be a list of rnnlab modules, got {type(layers).__name__}"
                            + (" (wrap a single layer in a list)" if isinstance(layers, Module) else ""))
        for layer in layers:
            self.add(layer)

    def add(self, layer: Module) -> None:
        if not isinstance(layer, Module):
            raise TypeError(f"layers must be rnnlab modules, got {type(layer).__name__}")
        if self.layers and getattr(self.layers[-1], "return_state", False):
            raise ValueError(f"only the last layer of a Sequential may have return_state=True; "
                             f"{type(self.layers[-1]).__name__} at index {len(self.layers) - 1} is followed by "
                             f"{type(layer).__name__}")
        dtypes = {m.dtype for m in self.layers + [layer] if not m.keeps_input_dtype}
        if len(dtypes) > 1:
            raise ValueError(f"layers of a Sequential must share one dtype; {type(layer).__name__} at index "
                             f"{len(self.layers)} is {layer.dtype.name}, earlier layers are "
                             f"{', '.join(sorted(d.name for d in dtypes - {layer.dtype}))}")
        shape = self._known_output_shape()
        if shape is not None and not layer.built:
            layer.build(shape)  # Keras-style: a known input size builds the whole stack
        elif shape is not None and getattr(layer, "input_size", None) not in (None, shape[-1]):
            raise ValueError(f"{type(layer).__name__} at index {len(self.layers)} has input_size={layer.input_size}, "
                             f"but the layer before it outputs {shape[-1]} features")
        self.layers.append(layer)
        self.dtype = next(iter(dtypes), layer.dtype)
        self.built = all(layer.built for layer in self.layers)
        if self.built and self.input_shape is None:
            self.input_shape = _input_shape_of(self.layers[0])

    def _known_output_shape(self) -> tuple | None:
        """The output shape of the layers so far, if the first layer fixes the input size (else None)."""
        if not self.layers:
            return None
        shape = _input_shape_of(self.layers[0])
        if shape is None:
            return None
        for layer in self.layers:
            shape = layer.output_shape(shape)
        return shape

    def children(self):
        return [(str(i), layer) for i, layer in enumerate(self.layers)]

    def layer_names(self) -> list[str]:
        """Each layer's ``name``, or a Keras-style default (``simple_rnn``, ``dense_1``, ...)."""
        names, seen = [], {}
        for layer in self.layers:
            base = layer.name or _snake(type(layer).__name__)
            count = seen.get(base, 0)
            seen[base] = count + 1
            names.append(base if count == 0 else f"{base}_{count}")
        return names

    def _first_stateful(self) -> int | None:
        for i, layer in enumerate(self.layers):
            if isinstance(layer, (Recurrent, Bidirectional)):
                return i
        return None

    def _state_children(self) -> list[str]:
        return [str(i) for i, layer in enumerate(self.layers) if layer.takes_state_map]

    # ------------------------------------------------------------------ shapes
    def build(self, input_shape) -> None:
        """Create every layer's parameters for inputs of ``input_shape`` (e.g. ``(None, T, D)``)."""
        shape = tuple(input_shape)
        self.input_shape = shape
        for layer in self.layers:
            layer.build(shape)
            shape = layer.output_shape(shape)
        self.built = True

    def output_shape(self, input_shape):
        shape = tuple(input_shape)
        for layer in self.layers:
            shape = layer.output_shape(shape)
        return shape

    def summary(self, input_shape=None, print_fn=print) -> str:
        """A Keras-style table: layer (type), output shape, parameter count, and the totals."""
        if input_shape is not None:
            self.build(input_shape)
        if self.input_shape is None:
            raise ValueError("summary() needs the input shape: pass input_shape=(None, timesteps, features) "
                             "or call the model once")
        rows, shape = [], (None,) + tuple(self.input_shape[1:])
        for name, layer in zip(self.layer_names(), self.layers):
            shape = layer.output_shape(shape)
            rows.append((f"{name} ({type(layer).__name__})", str(shape), f"{layer.count_params():,}"))
        widths = [max(len(h), *(len(r[i]) for r in rows))
                  for i, h in enumerate(("Layer (type)", "Output Shape", "Param #"))]
        line = "  ".join
        rule = "=" * (sum(widths) + 4)
        total = self.count_params()
        text = [f'Model: "{self.name or "sequential"}"', rule,
                line(h.ljust(w) for h, w in zip(("Layer (type)", "Output Shape", "Param #"), widths)), rule]
        text += [line(c.ljust(w) for c, w in zip(r, widths)) for r in rows]
        text += [rule, f"Total params: {total:,}", f"Trainable params: {total:,}", "Non-trainable params: 0", rule]
        notes = [(name, _regularisation(layer, self.layers, self.layer_names()))
                 for name, layer in zip(self.layer_names(), self.layers)]
        notes = [f"  {name}: {', '.join(items)}" for name, items in notes if items]
        if notes:
            text += ["Regularisation:", *notes, rule]
        out = "\n".join(text)
        if print_fn is not None:
            print_fn(out)
        return out

    # ------------------------------------------------------------------ forward / backward
    def forward(self, x, mask=None, initial_state=None, training: bool = False):
        """The layers applied in turn; the mask flows with the data (``output_mask`` after the call).

        ``initial_state`` is either the states of the first recurrent layer (a list of (B, H) arrays),
        or a *state map* ``{dotted layer name: states}`` with an entry (or None, or nothing, for
        zeros) for every recurrent layer, named as in :meth:`named_modules` (``{"1": (h, c), "3":
        (h,)}``). With a map the state is explicit: every recurrent layer starts from its entry,
        ``stateful`` layers neither read nor update their carried state, and :meth:`final_states`
        gives the map to continue from (see :mod:`rnnlab.nn.state`).
        """
        if not self.layers:
            raise ValueError("Sequential has no layers")
        explicit = isinstance(initial_state, Mapping)
        if explicit:
            check_state_keys(initial_state, self._state_children(), "this Sequential")
        first = self._first_stateful()
        if initial_state is not None and not explicit and first is None:
            raise ValueError("initial_state was given but the Sequential has no recurrent layer to take it")
        self.input_shape = (None,) + tuple(np.shape(x)[1:])
        for i, layer in enumerate(self.layers):
            inputs = x
            if explicit:
                state = self._layer_states(i, layer, initial_state)
            else:
                state = initial_state if i == first else None
            x = layer(inputs, mask=mask, initial_state=state, training=training)
            mask = layer.compute_mask(mask, inputs)
        self.output_mask = mask
        self.built = True
        return x

    @staticmethod
    def _layer_states(i: int, layer: Module, states: Mapping) -> StateMap | None:
        """What layer ``i`` gets from the state map ``states``: its part of the map, or None for a layer
        without recurrent state (a layer holding recurrent layers it cannot route a map to raises)."""
        if layer.takes_state_map:
            return sub_states(states, str(i))
        if any(m.takes_state_map for _, m in layer.named_modules()):
            raise TypeError(f"layer {i} ({type(layer).__name__}) holds recurrent layers but does not take a state "
                            "map, so the Sequential cannot pass their state explicitly")
        return None

    def final_states(self) -> StateMap:
        """The state map after the last forward call: ``{dotted name: s_T}`` for every recurrent layer,
        each ``s_T`` a tuple of (B, H) arrays; pass it as ``initial_state`` to continue from there."""
        return final_states(self)

    def backward(self, dy, *d_states, input_grad: bool = True):
        """Backward through the layers in reverse; returns ``dL/dx`` (None with ``input_grad=False``).

        A layer's input gradient is computed only if something uses it: the caller (``input_grad``) or
        an earlier layer with parameters. A recurrent layer reading one-hot vectors or raw features
        thus skips its ``dx = dz U`` GEMM when the trainer asks for no input gradient.
        """
        need = [input_grad]  # need[k]: the input gradient of layer k is used
        for layer in self.layers[:-1]:
            need.append(need[-1] or any(True for _ in layer.named_parameters()))
        for layer, wanted in zip(reversed(self.layers), reversed(need)):
            dy = layer.backward(dy, *d_states, input_grad=wanted)
            d_states = ()
            if not wanted:  # the layers before this one have no weights and no caller wants dL/dx
                return None
        return dy

    @property
    def initial_state_grad(self):
        first = self._first_stateful()
        return None if first is None else self.layers[first].initial_state_grad

    def reset_state(self) -> None:
        for layer in self.layers:
            if hasattr(layer, "reset_state"):
                layer.reset_state()

    # ------------------------------------------------------------------ config
    def get_config(self):
        """The layers' configs; a tied ``Dense`` (``tie=embedding``) names its embedding by its index here."""
        items = []
        for layer in self.layers:
            config = layer.get_config()
            tied = getattr(layer, "tie", None)
            if isinstance(tied, Module):
                index = next((i for i, other in enumerate(self.layers) if other is tied), None)
                if index is None:
                    raise ValueError(f"{type(layer).__name__} is tied to an {type(tied).__name__} that is not a layer "
                                     "of this Sequential, so the tie cannot be saved")
                config["tie"] = str(index)
            items.append({"class_name": type(layer).__name__, "config": config})
        return {"name": self.name, "layers": items}

    @classmethod
    def from_config(cls, config):
        layers = []
        for item in config["layers"]:
            layer_config = dict(item["config"])
            tie = layer_config.get("tie")
            if isinstance(tie, str):  # a tied layer: its embedding is an earlier layer
                if not (tie.isdigit() and int(tie) < len(layers)):
                    raise ValueError(f"layer {len(layers)} is tied to layer {tie!r}, which is not an earlier layer")
                layer_config["tie"] = layers[int(tie)]
            layers.append(registered(item["class_name"]).from_config(layer_config))
        return cls(layers, name=config.get("name"))

    # ------------------------------------------------------------------ a simple training loop
    def fit(self, x, y, *, loss="mse", optimizer="adam", epochs: int = 1, batch_size: int = 32, validation_data=None,
            clip_norm: float | None = None, mask=None, shuffle: bool = True, seed=None, verbose: bool = False) -> dict:
        """Mini-batch training, one :func:`~rnnlab.nn.step.train_step` per batch (forward, loss, backward,
        finite checks, optional clipping, optimizer step).

        Returns the history: ``{"loss": [...], "accuracy": [...]}`` per epoch (accuracy for classification
        losses), with ``val_`` entries when ``validation_data=(x_val, y_val)`` is given. A non-finite loss or
        gradient raises :class:`TrainingDiverged` naming the epoch, the step and the parameter, before the
        weights are touched. (The full trainer, with checkpoints and schedules, is :class:`rnnlab.training.Trainer`.)
        """
        epochs = check_positive_int("epochs", epochs)
        batch_size = check_positive_int("batch_size", batch_size)
        loss_fn = losses.get(loss)
        opt = optim.get(optimizer)
        x, y = np.asarray(x), np.asarray(y)
        if len(x) != len(y):
            raise ValueError(f"x and y must hold the same number of samples, got {len(x)} and {len(y)}")
        rng = as_generator(seed)
        history: dict[str, list[float]] = {}
        step = 0
        for epoch in range(1, epochs + 1):
            order = rng.permutation(len(x)) if shuffle else np.arange(len(x))
            total, count, correct, counted = 0.0, 0, 0, 0
            for start in range(0, len(x), batch_size):
                idx = order[start:start + batch_size]
                step += 1
                try:
                    result = train_step(self, loss_fn, opt, x[idx], y[idx],
                                        mask=None if mask is None else np.asarray(mask)[idx], clip_norm=clip_norm)
                except StepDiverged as exc:
                    raise TrainingDiverged(f"training diverged at epoch {epoch}, step {step}: {exc}; the weights are "
                                           f"left as they were after step {step - 1}") from None
                total += result.loss * len(idx)
                count += len(idx)
                hit, n = _hits(result.outputs, y[idx], loss_fn, result.mask)
                correct, counted = correct + hit, counted + n
            history.setdefault("loss", []).append(total / count)
            if _is_classification(loss_fn):
                history.setdefault("accuracy", []).append(correct / max(counted, 1))
            if validation_data is not None:
                for key, value in self.evaluate(*validation_data, loss=loss_fn, batch_size=batch_size).items():
                    history.setdefault(f"val_{key}", []).append(value)
            if verbose:
                print(f"epoch {epoch}/{epochs}: " + ", ".join(f"{k}={v[-1]:.4f}" for k, v in history.items()))
        return history

    def _loss_mask(self, y_pred):
        mask = self.output_mask
        return mask if mask is not None and y_pred.ndim >= 2 and mask.shape == y_pred.shape[:mask.ndim] else None

    def predict(self, x, *, batch_size: int = 256, mask=None) -> np.ndarray:
        """Outputs for ``x`` in inference mode, computed in batches."""
        batch_size = check_positive_int("batch_size", batch_size)
        outs = []
        for start in range(0, len(x), batch_size):
            sl = slice(start, start + batch_size)
            out = self(np.asarray(x)[sl], mask=None if mask is None else np.asarray(mask)[sl])
            outs.append(out[0] if isinstance(out, tuple) else out)
        return np.concatenate(outs, axis=0)

    def evaluate(self, x, y, *, loss="mse", batch_size: int = 256, mask=None) -> dict:
        """Mean loss (and accuracy for classification losses) over ``(x, y)``, in inference mode."""
        loss_fn = losses.get(loss)
        x, y = np.asarray(x), np.asarray(y)
        total, weight, correct, counted = 0.0, 0, 0, 0
        for start in range(0, len(x), batch_size):
            sl = slice(start, start + batch_size)
            y_pred = self(x[sl], mask=None if mask is None else np.asarray(mask)[sl])
            lmask = self._loss_mask(y_pred)
            n = int(lmask.sum()) if lmask is not None else len(y_pred)
            total += loss_fn(y_pred, y[sl], mask=lmask) * n
            weight += n
            hit, m = _hits(y_pred, y[sl], loss_fn, lmask)
            correct, counted = correct + hit, counted + m
        result = {"loss": total / max(weight, 1)}
        if _is_classification(loss_fn):
            result["accuracy"] = correct / max(counted, 1)
        return result


def _regularisation(layer: Module, layers: list[Module], names: list[str]) -> list[str]:
    """What :meth:`Sequential.summary` lists for ``layer``: its own dropouts, weight drop, chrono and tie."""
    if isinstance(layer, Bidirectional):
        layer = layer.forward_layer
    items = []  # (Dropout and LockedDropout layers are in the table already)
    keys = ("dropout", "recurrent_dropout", "weight_dropout") if isinstance(layer, Recurrent) else ("dropout",)
    if isinstance(layer, (Recurrent, Embedding)):
        items += [f"{'embedding_dropout' if isinstance(layer, Embedding) else key}={getattr(layer, key):g}"
                  for key in keys if getattr(layer, key)]
    if isinstance(layer, Recurrent):
        bias = layer.get_config()["bias_initializer"]
        if isinstance(bias, str) and bias.startswith("chrono:"):
            items.append(f"init={bias}")
    tie = getattr(layer, "tie", None)
    if isinstance(tie, Module):
        index = next((i for i, other in enumerate(layers) if other is tie), None)
        items.append(f"weights tied to {names[index] if index is not None else type(tie).__name__}")
    return items


def _input_shape_of(layer: Module) -> tuple | None:
    """``(None, None, D)`` for a sequence layer built for D features, ``(None, None)`` for token ids."""
    if isinstance(layer, (Embedding, OneHot)):
        return (None, None)
    inner = layer.forward_layer if isinstance(layer, Bidirectional) else layer
    if isinstance(inner, Recurrent) and inner.input_size is not None:
        return (None, None, inner.input_size)
    return None


def _is_classification(loss_fn) -> bool:
    return isinstance(loss_fn, (SoftmaxCrossEntropy, BinaryCrossEntropyWithLogits))


def _hits(y_pred, y_true, loss_fn, mask) -> tuple[int, int]:
    """``(correct, counted)`` predictions: argmax for softmax outputs, logit > 0 for binary ones;
    masked steps are not counted. ``(0, 0)`` for regression losses."""
    if isinstance(loss_fn, SoftmaxCrossEntropy):
        pred = y_pred.argmax(axis=-1)
        y_true = np.asarray(y_true)
        true = y_true if y_true.ndim == pred.ndim else y_true.argmax(axis=-1)
    elif isinstance(loss_fn, BinaryCrossEntropyWithLogits):
        pred, true = y_pred > 0, np.asarray(y_true) > 0.5
    else:
        return 0, 0
    valid = np.ones(pred.shape, dtype=bool)
    if mask is not None:
        valid &= mask.reshape(mask.shape + (1,) * (pred.ndim - mask.ndim))
    return int(((pred == true) & valid).sum()), int(valid.sum())


def stack(layer_class: type[Recurrent], hidden_size: int, num_layers: int = 1, *, bidirectional: bool = False,
          merge_mode: str | None = "concat", dropout: float = 0.0, locked_dropout: bool = False,
          input_dropout: float = 0.0, return_sequences: bool = True, seed=None, **kwargs):
    """A ``num_layers``-deep stack of one recurrent layer type, as ``torch.nn.LSTM(num_layers=...)`` builds.

    Every layer but the last returns sequences; ``return_sequences`` applies to the last. With
    ``dropout > 0`` a :class:`~rnnlab.layers.Dropout` sits between consecutive layers (not after the
    last), as in PyTorch; a :class:`~rnnlab.layers.LockedDropout` (one mask per sequence) with
    ``locked_dropout``. ``input_dropout`` is each layer's own (Keras') ``dropout``. ``kwargs`` go to
    every layer (``input_size`` only to the first), ``recurrent_dropout`` and ``weight_dropout`` among them.

    Returns
    -------
    Sequential
    """
    if not (isinstance(layer_class, type) and issubclass(layer_class, Recurrent)):
        raise TypeError(f"layer_class must be SimpleRNN, LSTM, GRU or another Recurrent subclass, got {layer_class!r}")
    num_layers = check_positive_int("num_layers", num_layers)
    rng = as_generator(seed)
    input_size = kwargs.pop("input_size", None)
    layers = []
    for i in range(num_layers):
        last = i == num_layers - 1
        layer = layer_class(hidden_size, input_size=input_size if i == 0 else None,
                            return_sequences=return_sequences if last else True, seed=rng, dropout=input_dropout,
                            **kwargs)
        layers.append(Bidirectional(layer, merge_mode) if bidirectional else layer)
        if dropout and not last:
            layers.append((LockedDropout if locked_dropout else Dropout)(dropout, seed=rng, dtype=layer.dtype))
    return Sequential(layers)
