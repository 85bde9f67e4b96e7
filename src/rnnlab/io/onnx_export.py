"""rnnlab modules to ONNX graphs: :func:`export` (read back by :mod:`rnnlab.io.onnx_import`).

The graph computes the module's inference forward pass in float32, batch-first at its edges and
time-major inside (ONNX Runtime refuses the recurrent operators' ``layout = 1``)::

    x (B, T) ids or (B, T, D)  -> Transpose -> [Gather | OneHot] -> RNN/LSTM/GRU ... -> MatMul+Add -> Transpose
                                                                                 -> y (B, T, K) or (B, K)

Layers map one to one onto operators, with the weights converted as :mod:`rnnlab.io.interop` does
for PyTorch (ONNX keeps PyTorch's two biases ``B = [Wb; Rb]``)::

    rnnlab                     ONNX                         gate blocks
    Embedding  E (V, dim)      Gather(E, ids)
    OneHot                     OneHot(ids, V, [0, 1])
    SimpleRNN  U, W, b         RNN   W=U, R=W, B=[b; 0]     activation Tanh/Relu/Sigmoid/Affine(1, 0)
    LSTM       U, W, b         LSTM  (i, f, g, o) -> (i, o, f, c), B=[b; 0]
    GRU        U, W, b, b_hn   GRU   (r, z, n) -> (z, r, h), B=[b; (0, 0, b_hn)],
                                     linear_before_reset = 1 if reset_after else 0
    Bidirectional              direction="bidirectional", then Concat/Add/Mul/Mean of the two
    go_backwards               direction="reverse", outputs flipped into processing order (Keras)
    Dense      V (K, H), c     MatMul(x, V^T) + c, then Tanh/Relu/Sigmoid
    Dropout                    nothing (inference)

Masks become ``sequence_lens``: an ``Embedding``/``OneHot`` with ``mask_zero=True`` makes the graph
count each row's non-zero ids, or ``lengths=True`` adds an int32 input ``sequence_lens`` (B,). ONNX
runs steps ``0 .. len-1`` of each row, so the padding must be on the right; rnnlab's masks also allow
left padding (the state passes a masked step unchanged wherever it is), which a ``sequence_lens``
cannot express: a left-padded batch gives different results in the exported graph.

Every recurrent layer's state is an optional input and an output of the graph, each (B, H), named
after the layer's state-map key (:mod:`rnnlab.nn.state`): ``state_in.1.h``/``state_out.1.h``,
``state_in.1.forward.c``... An input that is not fed is zeros (its default, an initializer of shape
(1, H), is broadcast to the batch), so the same graph serves batch inference and step-by-step
generation: feed one step and the previous call's ``state_out`` as ``state_in``.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from rnnlab._files import write_atomic
from rnnlab._validation import check_choice, optional_module
from rnnlab.nn.bidirectional import Bidirectional
from rnnlab.nn.layers import Dense, Dropout, Embedding, OneHot
from rnnlab.nn.module import Module
from rnnlab.nn.recurrent import GRU, LSTM, Recurrent, SimpleRNN
from rnnlab.nn.sequential import Sequential

ONNX_REQUIREMENTS = "onnx==1.23.2 onnxruntime==1.32.0"
#: the ONNX operator set version ``export`` writes unless told
DEFAULT_OPSET = 17
MIN_OPSET = 14  # the recurrent operators' current form (the layout attribute) and Squeeze/ReduceSum axes as inputs
HEADS = (None, "softmax", "sigmoid")

# rnnlab gate blocks -> ONNX's order
_GATE_ORDER = {LSTM: (0, 3, 1, 2), GRU: (1, 0, 2), SimpleRNN: (0,)}  # i,f,g,o -> i,o,f,c; r,z,n -> z,r,h
_OP = {LSTM: "LSTM", GRU: "GRU", SimpleRNN: "RNN"}
_ACTIVATION = {"tanh": "Tanh", "relu": "Relu", "sigmoid": "Sigmoid"}
_MERGE = {"concat": "Concat", "sum": "Add", "mul": "Mul", "ave": "Mean"}
_SUPPORTED = "Embedding, OneHot, SimpleRNN, LSTM, GRU, Bidirectional, Dense and Dropout"


def import_onnx(function: str):
    """Import the ``onnx`` package, or explain which extra to install."""
    return optional_module("onnx", f"rnnlab.onnx.{function}",
                           f"`pip install 'rnnlab[onnx]'` ({ONNX_REQUIREMENTS})")


def _layers_of(model: Module) -> list[Module]:
    if isinstance(model, Sequential):
        layers = list(model.layers)
    elif isinstance(model, Module):
        layers = [model]
    else:
        raise TypeError(f"export expects an rnnlab module (a Sequential or one layer), got {type(model).__name__} "
                        f"{model!r:.80}")
    if not layers:
        raise ValueError("export got an empty Sequential")
    for i, layer in enumerate(layers):
        where = f"layer {i} ({type(layer).__name__})" if isinstance(model, Sequential) else type(layer).__name__
        if not isinstance(layer, (Embedding, OneHot, Recurrent, Bidirectional, Dense, Dropout)):
            raise ValueError(f"export: {where} has no ONNX export; supported layers: {_SUPPORTED}")
        if isinstance(layer, (Embedding, OneHot)) and i > 0:
            raise ValueError(f"export: {where} must be the first layer (it reads token ids)")
        if not layer.built:
            raise ValueError(f"export: {where} has no weights yet (input size unknown); build it first, e.g. pass "
                             "input_size= or call the model on data")
        if isinstance(layer, Recurrent) and type(layer) not in _OP:
            raise ValueError(f"export: {where} is a recurrent layer with no ONNX operator; supported: "
                             "SimpleRNN, LSTM, GRU")
        if isinstance(layer, Bidirectional):
            if layer.merge_mode is None:
                raise ValueError(f"export: {where} has merge_mode=None (two outputs); ONNX merges with "
                                 "merge_mode 'concat', 'sum', 'mul' or 'ave'")
            if layer.forward_layer.go_backwards:
                raise ValueError(f"export: {where} has a forward layer with go_backwards=True; ONNX's "
                                 "bidirectional operator reads its first direction forward in time")
    return layers


class _Graph:
    """The nodes, initializers, inputs and outputs of the graph being built, with fresh value names."""

    def __init__(self, onnx):
        self.onnx, self.helper = onnx, onnx.helper
        self.nodes, self.initializers, self.inputs, self.outputs = [], [], [], []
        self._count = 0

    def name(self, stem: str) -> str:
        self._count += 1
        return f"{stem}_{self._count}"

    def const(self, stem: str, value) -> str:
        name = self.name(stem)
        self.initializers.append(self.onnx.numpy_helper.from_array(np.asarray(value), name))
        return name

    def node(self, op: str, inputs, stem: str | None = None, n_out: int = 1, **attrs) -> list[str]:
        outputs = [self.name(stem or op.lower()) for _ in range(n_out)]
        self.nodes.append(self.helper.make_node(op, list(inputs), outputs, name=self.name(op), **attrs))
        return outputs

    def one(self, op: str, inputs, stem: str | None = None, **attrs) -> str:
        return self.node(op, inputs, stem, **attrs)[0]


def _state_name(kind: str, key: str, state: str) -> str:
    return ".".join(p for p in (kind, key, state) if p)


def _weights(layer: Recurrent) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """ONNX's ``W`` (G*H, D), ``R`` (G*H, H), ``B`` (2*G*H,) of one direction, float32."""
    p, H = layer.params, layer.hidden_size
    kind = type(layer)
    order = _GATE_ORDER[kind]

    def blocks(a):
        return np.concatenate([a[k * H:(k + 1) * H] for k in order], axis=0)

    Rb = np.zeros_like(p["b"])
    if "b_hn" in p:
        Rb[2 * H:] = p["b_hn"]  # ONNX's h block is third in both orders
    return (blocks(p["U"]).astype(np.float32), blocks(p["W"]).astype(np.float32),
            np.concatenate([blocks(p["b"]), Rb]).astype(np.float32))


def _attributes(layer: Recurrent, n_directions: int) -> dict:
    """The operator's attributes; ONNX lists the activations once per direction."""
    cell = layer.cell.get_config()
    if isinstance(layer, SimpleRNN):
        activation = cell["activation"]
        if activation == "linear":
            return {"activations": ["Affine"] * n_directions, "activation_alpha": [1.0] * n_directions,
                    "activation_beta": [0.0] * n_directions}
        return {"activations": [_ACTIVATION[activation]] * n_directions}
    if isinstance(layer, LSTM):
        return {"activations": ["Sigmoid", _ACTIVATION[cell["candidate_activation"]], "Tanh"] * n_directions}
    return {"linear_before_reset": int(cell["reset_after"])}


class _Exporter:
    def __init__(self, onnx, model: Module, head, lengths: bool):
        self.g = _Graph(onnx)
        self.model, self.head, self.lengths = model, head, lengths
        self.tp = onnx.TensorProto
        self.batch_shape = None  # the value [B] (int64, (1,)), made on first use

    def batch(self, x_tm: str) -> str:
        """``[B]`` from the time-major input ``x_tm``."""
        if self.batch_shape is None:
            shape = self.g.one("Shape", [x_tm], "shape")
            self.batch_shape = self.g.one("Slice", [shape, self.g.const("one", np.array([1], np.int64)),
                                                    self.g.const("two", np.array([2], np.int64))], "batch")
        return self.batch_shape

    def state_input(self, key: str, state: str, H: int, x_tm: str) -> str:
        """The optional graph input of one state, broadcast to (1, B, H)."""
        g, name = self.g, _state_name("state_in", key, state)
        g.inputs.append(g.helper.make_tensor_value_info(name, self.tp.FLOAT, ["batch", H]))
        g.initializers.append(g.onnx.numpy_helper.from_array(np.zeros((1, H), np.float32), name))
        shape = g.one("Concat", [self.batch(x_tm), g.const("H", np.array([H], np.int64))], "state_shape", axis=0)
        full = g.one("Expand", [name, shape], "state")  # (B, H)
        return g.one("Unsqueeze", [full, g.const("axis0", np.array([0], np.int64))], "state")  # (1, B, H)

    def state_outputs(self, key_of_direction: list[str], names: list[str], states: list[str], H: int) -> None:
        """``states`` (nd, B, H) each -> one (B, H) graph output per direction and state."""
        g = self.g
        for state, value in zip(names, states):
            parts = (g.node("Split", [value, g.const("ones", np.ones(len(key_of_direction), np.int64))], "part",
                            n_out=len(key_of_direction), axis=0) if len(key_of_direction) > 1 else [value])
            for key, part in zip(key_of_direction, parts):
                out = _state_name("state_out", key, state)
                g.nodes.append(g.helper.make_node("Squeeze", [part, g.const("axis0", np.array([0], np.int64))], [out],
                                                  name=g.name("Squeeze")))
                g.outputs.append(g.helper.make_tensor_value_info(out, self.tp.FLOAT, ["batch", H]))

    def recurrent(self, layer: Module, key: str, x: str, seq_lens: str) -> tuple[str, bool]:
        """One (possibly bidirectional) recurrent layer over the time-major ``x``: its output and
        whether it is a sequence."""
        g = self.g
        if isinstance(layer, Bidirectional):
            directions = [layer.forward_layer, layer.backward_layer]
            keys = [f"{key}.forward" if key else "forward", f"{key}.backward" if key else "backward"]
            direction = "bidirectional"
        else:
            directions, keys = [layer], [key]
            direction = "reverse" if layer.go_backwards else "forward"
        first = directions[0]
        H, state_names = first.hidden_size, list(first.state_names)
        W, R, B = (np.stack(arrays) for arrays in zip(*(_weights(d) for d in directions)))
        initial = []
        for state in state_names:
            per_direction = [self.state_input(k, state, H, x) for k in keys]
            initial.append(per_direction[0] if len(per_direction) == 1
                           else g.one("Concat", per_direction, "state", axis=0))  # (nd, B, H)
        op = _OP[type(first)]
        inputs = [x, g.const("W", W), g.const("R", R), g.const("B", B), seq_lens, *initial]
        n_out = 1 + len(state_names)
        Y, *finals = g.node(op, inputs, op.lower(), n_out=n_out, hidden_size=H, direction=direction,
                            **_attributes(first, len(directions)))
        self.state_outputs(keys, state_names, finals, H)
        Y_h = finals[0]  # (nd, B, H)
        if layer.return_sequences:
            axis1 = g.const("axis1", np.array([1], np.int64))
            if direction == "bidirectional":
                f, b = g.node("Split", [Y, g.const("ones", np.ones(2, np.int64))], "y", n_out=2, axis=1)
                halves = [g.one("Squeeze", [f, axis1], "y_f"), g.one("Squeeze", [b, axis1], "y_b")]  # (T, B, H)
            else:
                y = g.one("Squeeze", [Y, axis1], "y")  # (T, B, H)
                if direction == "reverse":  # rnnlab returns a go_backwards layer's outputs in processing order
                    y = g.one("Slice", [y, g.const("start", np.array([-1], np.int64)),
                                        g.const("end", np.array([np.iinfo(np.int64).min], np.int64)),
                                        g.const("axis0", np.array([0], np.int64)),
                                        g.const("step", np.array([-1], np.int64))], "y_reversed")
                return y, True
        else:
            axis0 = g.const("axis0", np.array([0], np.int64))
            if direction != "bidirectional":
                return g.one("Squeeze", [Y_h, axis0], "y"), False  # (B, H): the last valid step
            f, b = g.node("Split", [Y_h, g.const("ones", np.ones(2, np.int64))], "y", n_out=2, axis=0)
            halves = [g.one("Squeeze", [f, axis0], "y_f"), g.one("Squeeze", [b, axis0], "y_b")]  # (B, H)
        merge = _MERGE[layer.merge_mode]
        attrs = {"axis": -1} if merge == "Concat" else {}
        return g.one(merge, halves, "merged", **attrs), layer.return_sequences

    def dense(self, layer: Dense, x: str) -> str:
        g = self.g
        y = g.one("MatMul", [x, g.const("V_T", np.ascontiguousarray(layer.params["V"].T, dtype=np.float32))], "dense")
        if layer.use_bias:
            y = g.one("Add", [y, g.const("c", layer.params["c"].astype(np.float32))], "dense")
        if layer.activation != "linear":
            y = g.one(_ACTIVATION[layer.activation], [y], "dense")
        return y

    def build(self, opset: int):
        g, helper = self.g, self.g.helper
        layers = _layers_of(self.model)
        keys = ([str(i) for i in range(len(layers))] if isinstance(self.model, Sequential) else [""])
        first = layers[0]
        ids = isinstance(first, (Embedding, OneHot))
        if ids:
            g.inputs.append(helper.make_tensor_value_info("x", self.tp.INT64, ["batch", "time"]))
        else:
            sized = next((m for m in layers if not isinstance(m, Dropout)), first)  # a Dropout has no size
            sized = sized.forward_layer if isinstance(sized, Bidirectional) else sized
            D = getattr(sized, "input_size", None) or "features"
            g.inputs.append(helper.make_tensor_value_info("x", self.tp.FLOAT, ["batch", "time", D]))
        x_tm = g.one("Transpose", ["x"], "x_tm", perm=[1, 0] if ids else [1, 0, 2])  # (T, B[, D])
        self.batch(x_tm)
        seq_lens = ""
        mask_zero = ids and first.mask_zero
        if mask_zero and self.lengths:
            raise ValueError("export: lengths=True adds a sequence_lens input, but the model's first layer has "
                             "mask_zero=True, so the graph already counts each row's non-zero ids")
        if mask_zero:
            nonzero = g.one("Not", [g.one("Equal", [x_tm, g.const("zero", np.array(0, np.int64))])], "mask")
            seq_lens = g.one("ReduceSum", [g.one("Cast", [nonzero], "mask", to=self.tp.INT32),
                                           g.const("axis0", np.array([0], np.int64))], "sequence_lens", keepdims=0)
        elif self.lengths:
            seq_lens = "sequence_lens"
            g.inputs.append(helper.make_tensor_value_info("sequence_lens", self.tp.INT32, ["batch"]))

        h, sequence = x_tm, True
        for layer, key in zip(layers, keys):
            if isinstance(layer, Embedding):
                h = g.one("Gather", [g.const("E", layer.params["E"].astype(np.float32)), h], "embedded")
            elif isinstance(layer, OneHot):
                h = g.one("OneHot", [h, g.const("depth", np.array(layer.num_classes, np.int64)),
                                     g.const("values", np.array([0, 1], np.float32))], "one_hot", axis=-1)
            elif isinstance(layer, (Recurrent, Bidirectional)):
                if not sequence:
                    raise ValueError(f"export: layer {key} ({type(layer).__name__}) reads the output of a layer "
                                     "with return_sequences=False, which is not a sequence")
                h, sequence = self.recurrent(layer, key, h, seq_lens)
            elif isinstance(layer, Dense):
                h = self.dense(layer, h)
        if self.head is not None:
            h = g.one({"softmax": "Softmax", "sigmoid": "Sigmoid"}[self.head], [h], "head",
                      **({"axis": -1} if self.head == "softmax" else {}))
        y_shape = ["batch"]
        if sequence:
            h = g.one("Transpose", [h], "y", perm=[1, 0, 2])  # back to (B, T, K)
            y_shape.append("time")
        g.nodes.append(helper.make_node("Identity", [h], ["y"], name=g.name("Identity")))
        g.outputs.insert(0, helper.make_tensor_value_info("y", self.tp.FLOAT, y_shape + [None]))
        graph = helper.make_graph(g.nodes, "rnnlab", g.inputs, g.outputs, g.initializers)
        model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", opset)], producer_name="rnnlab")
        model.ir_version = min(model.ir_version, g.onnx.IR_VERSION)
        g.onnx.checker.check_model(model, full_check=True)
        return model


def to_onnx(model: Module, *, opset: int = DEFAULT_OPSET, head: str | None = None, lengths: bool = False):
    """The ``onnx.ModelProto`` of ``model`` (see :func:`export`), checked by ``onnx.checker``."""
    onnx = import_onnx("export")
    if isinstance(opset, bool) or not isinstance(opset, int):
        raise TypeError(f"opset must be an int, got {opset!r}")
    newest = onnx.defs.onnx_opset_version()
    if not MIN_OPSET <= opset <= newest:
        raise ValueError(f"opset must lie in [{MIN_OPSET}, {newest}] (the installed onnx's newest), got {opset}")
    check_choice("head", head, HEADS)
    if not isinstance(lengths, bool):
        raise TypeError(f"lengths must be a bool, got {lengths!r}")
    return _Exporter(onnx, model, head, lengths).build(opset)


def export(model: Module, path, *, opset: int = DEFAULT_OPSET, head: str | None = None, lengths: bool = False) -> Path:
    """Write ``model`` as an ONNX file that ONNX Runtime runs (float32, written atomically).

    Parameters
    ----------
    model : Sequential or a single layer
        Of ``Embedding``/``OneHot`` (first only), ``SimpleRNN``, ``LSTM``, ``GRU``, ``Bidirectional``
        (any merge mode but None), ``Dense`` and ``Dropout`` (left out: the graph is inference only),
        built.
    path : str or Path
        The file to write, e.g. ``"model.onnx"``.
    opset : int
        The ONNX opset, from 14 to the installed onnx's newest (default 17).
    head : None, "softmax" or "sigmoid"
        An activation appended to the output: ``"softmax"`` turns a language model's logits into the
        next-token distribution, ``"sigmoid"`` a binary classifier's logit into a probability.
    lengths : bool
        Add the input ``sequence_lens`` (B,) int32 (right padding); not with ``mask_zero``, where the
        graph counts the non-zero ids itself.

    Returns
    -------
    Path
        ``path``. The graph's inputs: ``x`` (B, T) int64 ids or (B, T, D) float32, and the optional
        states ``state_in.<layer>.<h|c>`` (B, H); its outputs: ``y`` ((B, T, K), or (B, K) when the
        last recurrent layer returns its last valid step) and ``state_out.<layer>.<h|c>``. Batch and
        time are dynamic.

    Raises
    ------
    ImportError
        Without the ``onnx`` extra.
    ValueError
        For a layer or option ONNX cannot express (naming the layer): another layer class,
        ``Bidirectional(merge_mode=None)``, a ``Bidirectional`` whose forward layer has ``go_backwards``,
        an Embedding after the first layer, an unbuilt layer.
    """
    onnx_model = to_onnx(model, opset=opset, head=head, lengths=lengths)
    path = Path(path)
    write_atomic(path, onnx_model.SerializeToString())
    return path
