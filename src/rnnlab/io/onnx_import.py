"""ONNX graphs to rnnlab modules: :func:`load`, the inverse of :func:`rnnlab.io.onnx_export.export`.

The graph is read node by node, in its (topological) order. The operators that compute something
become layers::

    Gather(float matrix, ids)       Embedding            OneHot                 OneHot
    RNN / LSTM / GRU                SimpleRNN / LSTM / GRU, direction "reverse" as go_backwards,
                                    "bidirectional" as Bidirectional
    Concat / Add / Mul / Mean of the two directions of one operator: the Bidirectional's merge mode
                                    (concat when no such node follows, as torch's Transpose + Reshape)
    MatMul(x, matrix) [+ Add(vector)] [-> Tanh/Relu/Sigmoid], or Gemm: Dense

and the operators that only move data (Transpose, Squeeze, Unsqueeze, Reshape, Slice, Split, Shape,
Expand, Cast, Concat of shapes, the mask's Equal/Not/ReduceSum, ...) are passed over. A final
``Softmax`` (the exporter's ``head="softmax"``) is dropped: rnnlab's models output logits. A
``sequence_lens`` input or a mask computed from ids of 0 makes the first layer's ``mask_zero=True``.
Weights map back as in the exporter (the gate blocks reordered, ONNX's two biases summed except the
GRU's ``Rbh`` with ``linear_before_reset = 1``, which is rnnlab's ``b_hn``).

This reads the graphs rnnlab writes and those ``torch.onnx.export`` writes for ``nn.RNN``,
``nn.LSTM`` and ``nn.GRU`` (any number of layers, bidirectional, batch_first or not; the module
returned is batch-first either way). Anything else is a ValueError naming the operator and node.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from rnnlab.io.onnx_export import _GATE_ORDER, import_onnx
from rnnlab.nn.bidirectional import Bidirectional
from rnnlab.nn.layers import Dense, Embedding, OneHot
from rnnlab.nn.module import Module
from rnnlab.nn.recurrent import GRU, LSTM, SimpleRNN
from rnnlab.nn.sequential import Sequential

_CLASS = {"RNN": SimpleRNN, "LSTM": LSTM, "GRU": GRU}
_ACTIVATION = {"Tanh": "tanh", "Relu": "relu", "Sigmoid": "sigmoid"}
_MERGE = {"Concat": "concat", "Add": "sum", "Mul": "mul", "Mean": "ave"}
_PASS = {"Transpose", "Squeeze", "Unsqueeze", "Reshape", "Slice", "Split", "Shape", "Expand", "Cast", "Concat",
         "Constant", "ConstantOfShape", "Identity", "Equal", "Not", "ReduceSum", "Dropout", "Gather", "Size", "Range"}
_SUPPORTED = ("Gather (embedding), OneHot, RNN, LSTM, GRU, MatMul, Gemm, Add, Mul, Mean, Concat, Tanh, Relu, "
              "Sigmoid, a final Softmax, and data movement (Transpose, Squeeze, Unsqueeze, Reshape, Slice, Split, "
              "Shape, Expand, Cast, ...)")


class _Reader:
    def __init__(self, onnx, model, source: str):
        self.onnx, self.source = onnx, source
        self.graph = model.graph
        self.consts = {t.name: onnx.numpy_helper.to_array(t) for t in self.graph.initializer}
        self.inputs = {v.name for v in self.graph.input} - set(self.consts)
        self.outputs = {v.name for v in self.graph.output}
        self.consumed = {name for node in self.graph.node for name in node.input if name}
        self.specs: list[dict] = []  # one per layer, in order
        self.origin: dict[str, int] = {}  # value -> index of the bidirectional spec it comes from, unmerged
        self.dense_out: dict[str, int] = {}  # value -> index of the Dense spec whose output it is
        self.has_lengths = False
        self.zero_test = False

    def error(self, node, index: int, why: str) -> ValueError:
        return ValueError(f"rnnlab.onnx.load({self.source}): {why} at node {index} ({node.name or 'unnamed'!r}, "
                          f"op_type {node.op_type!r}); rnnlab reads {_SUPPORTED}")

    def const(self, name: str):
        return self.consts.get(name) if name else None

    def read(self) -> Module:
        for index, node in enumerate(self.graph.node):
            if node.domain not in ("", "ai.onnx"):
                raise self.error(node, index, f"unsupported operator {node.domain}.{node.op_type}")
            if node.op_type == "Constant":
                self.consts[node.output[0]] = self.onnx.numpy_helper.to_array(
                    self.onnx.helper.get_attribute_value(node.attribute[0]))
                continue
            handler = getattr(self, f"_{node.op_type.lower()}", None)
            if handler is None or not handler(node, index):
                if node.op_type not in _PASS:
                    raise self.error(node, index, f"unsupported operator {node.op_type!r}")
                self.pass_through(node)
        if not self.specs:
            raise ValueError(f"rnnlab.onnx.load({self.source}): the graph has no layer rnnlab reads "
                             f"(no embedding, recurrent or dense operator)")
        layers = [self.build(spec) for spec in self.specs]
        return layers[0] if len(layers) == 1 else Sequential(layers)

    def pass_through(self, node) -> None:
        """A data-movement node: its outputs come from where its inputs came from."""
        sources = {self.origin[i] for i in node.input if i in self.origin}
        for out in node.output:
            if sources:
                self.origin[out] = next(iter(sources))
        if node.op_type == "Equal" and any(self.const(i) is not None and np.all(self.const(i) == 0)
                                           for i in node.input):
            self.zero_test = True

    # ------------------------------------------------------------------ operators that make layers
    def _gather(self, node, index) -> bool:
        E = self.const(node.input[0])
        if E is None or E.ndim != 2 or not np.issubdtype(E.dtype, np.floating):
            return False  # a Gather on shapes
        self.specs.append({"kind": "embedding", "E": E})
        return True

    def _onehot(self, node, index) -> bool:
        depth, values = self.const(node.input[1]), self.const(node.input[2])
        if depth is None or values is None or list(np.ravel(values)) != [0, 1]:
            raise self.error(node, index, "a OneHot needs constant depth and values [0, 1]")
        self.specs.append({"kind": "onehot", "depth": int(np.ravel(depth)[0])})
        return True

    def _recurrent(self, node, index) -> bool:
        attrs = {a.name: self.onnx.helper.get_attribute_value(a) for a in node.attribute}
        op = node.op_type
        for name, bad in (("layout", 1), ("input_forget", 1)):
            if attrs.get(name, 0) == bad:
                raise self.error(node, index, f"{op} with {name}={bad} has no rnnlab equivalent")
        if "clip" in attrs:
            raise self.error(node, index, f"{op} with clip={attrs['clip']} (cell clipping) has no rnnlab equivalent")
        if op == "LSTM" and len(node.input) > 7 and node.input[7]:
            P = self.const(node.input[7])
            if P is None or np.any(P != 0):
                raise self.error(node, index, "an LSTM with peepholes (input P) has no rnnlab equivalent")
        W, R = self.const(node.input[1]), self.const(node.input[2])
        if W is None or R is None:
            raise self.error(node, index, f"{op} weights W and R must be initializers or constants")
        B = self.const(node.input[3]) if len(node.input) > 3 else None
        if len(node.input) > 4 and node.input[4]:
            self.has_lengths = True
        direction = attrs.get("direction", b"forward")
        direction = direction.decode() if isinstance(direction, bytes) else direction
        activations = [a.decode() if isinstance(a, bytes) else a for a in attrs.get("activations", [])]
        settings = self.settings(node, index, op, activations, attrs)
        Y = node.output[0] if node.output else ""
        spec = {"kind": "recurrent", "cls": _CLASS[op], "settings": settings, "W": W, "R": R, "B": B,
                "hidden": int(attrs.get("hidden_size", R.shape[-1])), "direction": direction,
                "return_sequences": bool(Y) and (Y in self.consumed or Y in self.outputs), "merge": "concat"}
        self.specs.append(spec)
        if direction == "bidirectional":
            for out in node.output:
                if out:
                    self.origin[out] = len(self.specs) - 1
        return True

    _rnn = _lstm = _gru = _recurrent

    def settings(self, node, index, op, activations, attrs) -> dict:
        if op == "RNN":
            names = set(activations or ["Tanh"])
            if names == {"Affine"}:
                if list(attrs.get("activation_alpha", [1.0])) == [1.0] * len(activations) and not any(
                        attrs.get("activation_beta", [])):
                    return {"activation": "linear"}
            elif len(names) == 1 and next(iter(names)) in _ACTIVATION:
                return {"activation": _ACTIVATION[next(iter(names))]}
            raise self.error(node, index, f"an RNN with activations {activations} has no rnnlab equivalent "
                                          "(one of Tanh, Relu, Sigmoid, Affine(1, 0) for every direction)")
        if op == "LSTM":
            triples = {tuple(activations[i:i + 3]) for i in range(0, len(activations), 3)} or {
                ("Sigmoid", "Tanh", "Tanh")}
            if len(triples) == 1:
                f, g, h = next(iter(triples))
                if f == "Sigmoid" and h == "Tanh" and g in ("Tanh", "Relu"):
                    return {"candidate_activation": _ACTIVATION[g], "forget_bias": None}
            raise self.error(node, index, f"an LSTM with activations {activations} has no rnnlab equivalent "
                                          "(Sigmoid, then Tanh or Relu, then Tanh)")
        if activations and set(activations) != {"Sigmoid", "Tanh"}:
            raise self.error(node, index, f"a GRU with activations {activations} has no rnnlab equivalent")
        if activations and [activations[i] for i in range(0, len(activations), 2)] != ["Sigmoid"] * (
                len(activations) // 2):
            raise self.error(node, index, f"a GRU with activations {activations} has no rnnlab equivalent")
        return {"reset_after": bool(attrs.get("linear_before_reset", 0))}

    def _matmul(self, node, index) -> bool:
        V_T = self.const(node.input[1])
        if V_T is None or V_T.ndim != 2 or self.const(node.input[0]) is not None:
            raise self.error(node, index, "a MatMul is read as a Dense layer: data times a constant matrix")
        self.specs.append({"kind": "dense", "V": V_T.T, "c": None, "activation": "linear"})
        self.dense_out[node.output[0]] = len(self.specs) - 1
        return True

    def _gemm(self, node, index) -> bool:
        attrs = {a.name: self.onnx.helper.get_attribute_value(a) for a in node.attribute}
        matrix = self.const(node.input[1])
        if (matrix is None or attrs.get("transA", 0) or attrs.get("alpha", 1.0) != 1.0
                or attrs.get("beta", 1.0) != 1.0):
            raise self.error(node, index, "a Gemm is read as a Dense layer: data times a constant matrix "
                                          "(alpha = beta = 1, transA = 0)")
        V = matrix if attrs.get("transB", 0) else matrix.T
        c = self.const(node.input[2]) if len(node.input) > 2 else None
        self.specs.append({"kind": "dense", "V": V, "c": c, "activation": "linear"})
        self.dense_out[node.output[0]] = len(self.specs) - 1
        return True

    # ------------------------------------------------------------------ operators read in context
    def merge(self, node, index) -> bool:
        """A Concat/Add/Mul/Mean of the two directions of one bidirectional operator: its merge mode."""
        sources = [self.origin.get(i) for i in node.input]
        if len(sources) < 2 or sources[0] is None or len(set(sources)) != 1:
            return False
        self.specs[sources[0]]["merge"] = _MERGE[node.op_type]
        return True  # the merged value comes from no unmerged operator any more

    def _add(self, node, index) -> bool:
        if self.merge(node, index):
            return True
        for data, bias in ((node.input[0], node.input[1]), (node.input[1], node.input[0])):
            c = self.const(bias)
            if data in self.dense_out and c is not None and c.ndim == 1:
                spec = self.dense_out[data]
                if self.specs[spec]["c"] is not None:
                    break
                self.specs[spec]["c"] = c
                self.dense_out[node.output[0]] = spec
                return True
        raise self.error(node, index, "an Add is read as a Dense layer's bias or a bidirectional merge")

    def _mul(self, node, index) -> bool:
        if self.merge(node, index):
            return True
        raise self.error(node, index, "a Mul is read only as a bidirectional merge")

    def _mean(self, node, index) -> bool:
        if self.merge(node, index):
            return True
        raise self.error(node, index, "a Mean is read only as a bidirectional merge")

    def _concat(self, node, index) -> bool:
        return self.merge(node, index)

    def _activation(self, node, index) -> bool:
        spec = self.dense_out.get(node.input[0])
        if spec is None or self.specs[spec]["activation"] != "linear":
            raise self.error(node, index, f"a {node.op_type} is read only as a Dense layer's activation")
        self.specs[spec]["activation"] = _ACTIVATION[node.op_type]
        self.dense_out[node.output[0]] = spec
        return True

    _tanh = _relu = _sigmoid = _activation

    def _softmax(self, node, index) -> bool:
        if node.output[0] not in self.outputs and not self.feeds_output(node.output[0]):
            raise self.error(node, index, "a Softmax is read only as the final head (it is dropped: rnnlab's "
                                          "models output logits)")
        return True

    def feeds_output(self, value: str) -> bool:
        """Whether ``value`` reaches a graph output through data movement only."""
        for node in self.graph.node:
            if value in node.input and node.op_type in ("Transpose", "Identity", "Reshape", "Squeeze"):
                if any(out in self.outputs or self.feeds_output(out) for out in node.output):
                    return True
        return False

    # ------------------------------------------------------------------ the layers
    def build(self, spec: dict) -> Module:
        mask_zero = self.has_lengths and self.zero_test
        if spec["kind"] == "embedding":
            E = spec["E"]
            layer = Embedding(E.shape[0], E.shape[1], mask_zero=mask_zero, dtype="float32")
            layer.set_weights({"E": E})
            return layer
        if spec["kind"] == "onehot":
            return OneHot(spec["depth"], mask_zero=mask_zero, dtype="float32")
        if spec["kind"] == "dense":
            V, c = spec["V"], spec["c"]
            layer = Dense(V.shape[0], spec["activation"], input_size=V.shape[1], use_bias=c is not None,
                          dtype="float32")
            layer.set_weights({"V": V} if c is None else {"V": V, "c": c})
            return layer
        cls, H = spec["cls"], spec["hidden"]
        W, R, B = spec["W"], spec["R"], spec["B"]
        nd = 2 if spec["direction"] == "bidirectional" else 1
        if W.shape[0] != nd:
            raise ValueError(f"rnnlab.onnx.load({self.source}): a {spec['direction']} operator has weights for "
                             f"{W.shape[0]} directions")
        layer = cls(H, input_size=W.shape[2], return_sequences=spec["return_sequences"],
                    go_backwards=spec["direction"] == "reverse", dtype="float32", **spec["settings"])
        module = Bidirectional(layer, spec["merge"]) if nd == 2 else layer
        directions = [module.forward_layer, module.backward_layer] if nd == 2 else [layer]
        for d, rec in enumerate(directions):
            rec.set_weights(_rnnlab_weights(cls, H, W[d], R[d], None if B is None else B[d], spec["settings"]))
        return module


def _rnnlab_weights(cls, H: int, W, R, B, settings: dict) -> dict[str, np.ndarray]:
    """rnnlab's ``U, W, b[, b_hn]`` of one direction from ONNX's ``W``, ``R``, ``B``."""
    order = _GATE_ORDER[cls]
    G = len(order)

    def blocks(a):  # ONNX block j holds rnnlab block order[j]
        return np.concatenate([a[order.index(k) * H:(order.index(k) + 1) * H] for k in range(G)], axis=0)

    if B is None:
        B = np.zeros(2 * G * H, dtype=W.dtype)
    Wb, Rb = B[:G * H], B[G * H:]
    weights = {"U": blocks(W), "W": blocks(R)}
    if cls is GRU and settings["reset_after"]:
        inside = Rb.copy()
        inside[2 * H:] = 0  # ONNX's h block, third in both orders, stays inside the reset product
        weights["b"] = blocks(Wb + inside)
        weights["b_hn"] = Rb[2 * H:].copy()
    else:
        weights["b"] = blocks(Wb + Rb)
    return weights


def load(path) -> Module:
    """Read an ONNX file (or an ``onnx.ModelProto``) back into an rnnlab module, float32.

    Parameters
    ----------
    path : str, Path or onnx.ModelProto
        A graph written by :func:`rnnlab.onnx.export`, or by ``torch.onnx.export`` for a
        ``torch.nn.RNN``/``LSTM``/``GRU`` (possibly followed by a ``Linear``).

    Returns
    -------
    Module
        One layer, or a ``Sequential`` of them, batch-first, computing the graph's output (without a
        final Softmax, which is dropped).

    Raises
    ------
    ImportError
        Without the ``onnx`` extra.
    ValueError
        For an operator or attribute rnnlab has no equivalent of, naming the operator and the node.
    """
    onnx = import_onnx("load")
    if isinstance(path, onnx.ModelProto):
        return _Reader(onnx, path, "<ModelProto>").read()
    path = Path(path)
    if not path.is_file():
        raise ValueError(f"rnnlab.onnx.load: '{path}' " + ("is not a file" if path.exists() else "does not exist"))
    try:
        model = onnx.load(str(path))
    except Exception as exc:  # onnx raises DecodeError and others for a file that is not a graph
        raise ValueError(f"rnnlab.onnx.load: '{path}' is not an ONNX model ({type(exc).__name__}: {exc})") from None
    return _Reader(onnx, model, f"'{path}'").read()
