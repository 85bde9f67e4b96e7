"""Helpers of the PyTorch reference tests: build a torch module, copy its weights into rnnlab layers,
run both with the same random projection loss, and collect every output and gradient side by side.

The weight copy here is written out independently of :mod:`rnnlab.interop` (which is under test in
``test_interop.py``), straight from the documented name map::

    U = weight_ih_l{l}{sfx}    W = weight_hh_l{l}{sfx}
    b = bias_ih + bias_hh                                   (RNN, LSTM)
    b = bias_ih + [bias_hh[:2H]; 0],  b_hn = bias_hh[2H:]   (GRU)

The loss is ``sum(output * R) + sum(h_n * R_h) [+ sum(c_n * R_c)]`` with Gaussian ``R``s, so the
output path and both final-state paths are exercised with gradients that differ per element. The
stacked rnnlab layers are driven one by one (``initial_state=`` and ``return_state=True`` on each),
so that the initial state and the final state of every layer and direction can be compared.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pytest

import rnnlab

# kind -> (torch class name, torch kwargs, rnnlab class, rnnlab kwargs)
KINDS = {
    "rnn_tanh": ("RNN", {"nonlinearity": "tanh"}, rnnlab.SimpleRNN, {"activation": "tanh"}),
    "rnn_relu": ("RNN", {"nonlinearity": "relu"}, rnnlab.SimpleRNN, {"activation": "relu"}),
    "lstm": ("LSTM", {}, rnnlab.LSTM, {}),
    "gru": ("GRU", {}, rnnlab.GRU, {"reset_after": True}),
}
SUFFIXES = ("", "_reverse")


@dataclass
class Run:
    """What one forward + backward pass produced, in torch's layout.

    out (B, T, nd*H); h_n, c_n (L*nd, B, H) (c_n None except LSTM); dx (B, T, D); dh0, dc0 like h_n;
    grads: torch parameter name -> gradient (torch's own names, rnnlab's mapped to them in
    :meth:`Reference.rnnlab_grads_as_torch`).
    """

    out: np.ndarray
    h_n: np.ndarray
    c_n: np.ndarray | None
    dx: np.ndarray
    dh0: np.ndarray
    dc0: np.ndarray | None
    grads: dict[str, np.ndarray]


class Reference:
    """Builds matching torch and rnnlab models and runs both on the same data and loss."""

    def __init__(self, torch):
        self.torch = torch

    # -------------------------------------------------------------- models
    def torch_module(self, kind: str, *, input_size: int, hidden_size: int, num_layers: int = 1,
                     bidirectional: bool = False, dtype: str = "float64", seed: int = 0, batch_first: bool = True,
                     bias: bool = True):
        """A torch module (batch-first unless told) with PyTorch's default random init, seeded."""
        torch = self.torch
        name, kwargs, _, _ = KINDS[kind]
        torch.manual_seed(seed)
        return getattr(torch.nn, name)(input_size, hidden_size, num_layers=num_layers, bidirectional=bidirectional,
                                       batch_first=batch_first, bias=bias, dtype=getattr(torch, dtype), **kwargs)

    def rnnlab_layers(self, kind: str, torch_module, *, reset_after: bool = True) -> list:
        """One rnnlab module per torch layer (a layer, or a Bidirectional), holding torch's weights.

        Each returns sequences and its final states. ``reset_after=False`` (GRU only) builds the other
        GRU form with ``b = bias_ih + bias_hh`` -- the closest map, which must *not* reproduce torch.
        """
        _, _, cls, kwargs = KINDS[kind]
        tm = torch_module
        H, nd = tm.hidden_size, 2 if tm.bidirectional else 1
        dtype = str(tm.weight_ih_l0.dtype).removeprefix("torch.")
        if kind == "gru":
            kwargs = {**kwargs, "reset_after": reset_after}
        layers = []
        for layer_idx in range(tm.num_layers):
            D = tm.input_size if layer_idx == 0 else nd * H
            layer = cls(H, input_size=D, return_sequences=True, return_state=True, dtype=dtype, seed=layer_idx,
                        **kwargs)
            module = rnnlab.Bidirectional(layer) if tm.bidirectional else layer
            weights = {}
            for d in range(nd):
                prefix = ("forward.", "backward.")[d] if tm.bidirectional else ""
                tag = f"_l{layer_idx}{SUFFIXES[d]}"
                w = {k: getattr(tm, k + tag).detach().numpy() for k in ("weight_ih", "weight_hh", "bias_ih", "bias_hh")}
                weights[prefix + "U"] = w["weight_ih"]
                weights[prefix + "W"] = w["weight_hh"]
                if kind == "gru" and reset_after:
                    zero_n = np.zeros(H, dtype=w["bias_hh"].dtype)  # (H,)
                    weights[prefix + "b"] = w["bias_ih"] + np.concatenate([w["bias_hh"][:2 * H], zero_n])
                    weights[prefix + "b_hn"] = w["bias_hh"][2 * H:]
                else:
                    weights[prefix + "b"] = w["bias_ih"] + w["bias_hh"]
            module.set_weights(weights)
            layers.append(module)
        return layers

    # -------------------------------------------------------------- data
    @staticmethod
    def draw(rng, torch_module, B: int, T: int) -> dict[str, np.ndarray]:
        """Input, initial states and the loss projections, in the module's dtype."""
        tm = torch_module
        dtype = np.dtype(str(tm.weight_ih_l0.dtype).removeprefix("torch."))
        H, nd, L = tm.hidden_size, 2 if tm.bidirectional else 1, tm.num_layers
        state = (L * nd, B, H)
        lstm = tm.mode == "LSTM"
        draw = {
            "x": rng.standard_normal((B, T, tm.input_size)),
            "h0": 0.5 * rng.standard_normal(state),
            "c0": 0.5 * rng.standard_normal(state) if lstm else None,
            "R": rng.standard_normal((B, T, nd * H)),
            "R_h": rng.standard_normal(state),
            "R_c": rng.standard_normal(state) if lstm else None,
        }
        return {k: None if v is None else v.astype(dtype) for k, v in draw.items()}

    # -------------------------------------------------------------- runs
    def run_torch(self, tm, x, h0, c0, R, R_h, R_c, lengths=None) -> Run:
        """Forward, loss, backward in torch; ``lengths`` packs the right-padded batch (enforce_sorted=False)."""
        torch = self.torch
        pack = torch.nn.utils.rnn
        xt = torch.tensor(x, requires_grad=True)
        h0t = torch.tensor(h0, requires_grad=True)
        c0t = None if c0 is None else torch.tensor(c0, requires_grad=True)
        inp = xt if lengths is None else pack.pack_padded_sequence(xt, torch.as_tensor(lengths), batch_first=True,
                                                                   enforce_sorted=False)
        out, hidden = tm(inp, h0t if c0t is None else (h0t, c0t))
        if lengths is not None:
            out, _ = pack.pad_packed_sequence(out, batch_first=True, total_length=x.shape[1])
        h_n, c_n = hidden if c0t is not None else (hidden, None)
        loss = (out * torch.from_numpy(R)).sum() + (h_n * torch.from_numpy(R_h)).sum()
        if c_n is not None:
            loss = loss + (c_n * torch.from_numpy(R_c)).sum()
        tm.zero_grad()
        loss.backward()
        return Run(out=out.detach().numpy(), h_n=h_n.detach().numpy(),
                   c_n=None if c_n is None else c_n.detach().numpy(), dx=xt.grad.numpy(), dh0=h0t.grad.numpy(),
                   dc0=None if c0t is None else c0t.grad.numpy(),
                   grads={name: p.grad.numpy().copy() for name, p in tm.named_parameters()})

    def run_torch_each_alone(self, tm, x, h0, c0, R, R_h, R_c, lengths) -> Run:
        """The loss of a *left*-padded batch computed by torch one unpadded sequence at a time.

        Sequence b is ``x[b, T - lengths[b]:]``; its loss terms are summed into one scalar, so the
        parameter gradients are the batch's. Outputs go back to their left-padded positions (zeros
        on the padding) and ``dx`` is zero there, as rnnlab's masked layers must give.
        """
        torch = self.torch
        T = x.shape[1]
        xt = torch.tensor(x, requires_grad=True)
        h0t = torch.tensor(h0, requires_grad=True)
        c0t = None if c0 is None else torch.tensor(c0, requires_grad=True)
        out = np.zeros(R.shape, dtype=x.dtype)  # (B, T, nd*H)
        h_n, c_n, loss = [], [], 0
        for b, length in enumerate(lengths):
            steps = slice(T - length, T)
            hx = h0t[:, b:b + 1] if c0t is None else (h0t[:, b:b + 1], c0t[:, b:b + 1])
            out_b, hidden = tm(xt[b:b + 1, steps], hx)
            h_b, c_b = hidden if c0t is not None else (hidden, None)
            loss = loss + (out_b * torch.from_numpy(R[b:b + 1, steps])).sum()
            loss = loss + (h_b * torch.from_numpy(R_h[:, b:b + 1])).sum()
            if c_b is not None:
                loss = loss + (c_b * torch.from_numpy(R_c[:, b:b + 1])).sum()
                c_n.append(c_b.detach().numpy())
            out[b, steps] = out_b.detach().numpy()[0]
            h_n.append(h_b.detach().numpy())
        tm.zero_grad()
        loss.backward()
        return Run(out=out, h_n=np.concatenate(h_n, axis=1), c_n=np.concatenate(c_n, axis=1) if c_n else None,
                   dx=xt.grad.numpy(), dh0=h0t.grad.numpy(), dc0=None if c0t is None else c0t.grad.numpy(),
                   grads={name: p.grad.numpy().copy() for name, p in tm.named_parameters()})

    def run_rnnlab(self, layers, x, h0, c0, R, R_h, R_c, mask=None) -> Run:
        """The same loss through rnnlab's layers, driven one by one so every layer's states are visible."""
        bidirectional = isinstance(layers[0], rnnlab.Bidirectional)
        nd, lstm = (2 if bidirectional else 1), c0 is not None
        n = 2 if lstm else 1  # state tensors per direction

        def per_direction(arrays, layer_idx):  # [h_f, (c_f), h_b, (c_b)] as Bidirectional orders them
            out = []
            for d in range(nd):
                out += [a[layer_idx * nd + d] for a in arrays if a is not None]
            return out

        y, finals = x, []
        for layer_idx, layer in enumerate(layers):
            y, *states = layer(y, mask=mask, initial_state=per_direction((h0, c0), layer_idx))
            finals.append(states)
        for layer in layers:
            layer.zero_grad()
        dy = R
        for layer_idx in reversed(range(len(layers))):
            dy = layers[layer_idx].backward(dy, *per_direction((R_h, R_c), layer_idx))

        def pick(per_layer, i):  # state i of every layer and direction, (L*nd, B, H)
            return np.stack([states[d * n + i] for states in per_layer for d in range(nd)])

        grads = {}
        for layer_idx, layer in enumerate(layers):
            grads.update({f"{name}@{layer_idx}": g.copy() for name, g in layer.grads.items()})
        return Run(out=y, h_n=pick(finals, 0), c_n=pick(finals, 1) if lstm else None, dx=dy,
                   dh0=pick([layer.initial_state_grad for layer in layers], 0),
                   dc0=pick([layer.initial_state_grad for layer in layers], 1) if lstm else None, grads=grads)

    @staticmethod
    def rnnlab_grads_as_torch(run: Run, torch_module) -> dict[str, np.ndarray]:
        """rnnlab's gradients under torch's names: dU -> weight_ih, dW -> weight_hh, db -> bias_ih,
        and bias_hh's gradient from db (r, z and the RNN/LSTM gates) and db_hn (the GRU's n block).

        The loss depends on ``bias_ih`` and on ``bias_hh`` (outside the GRU's n block) only through
        their sum ``b``, so both their gradients equal ``db``.
        """
        tm = torch_module
        H, nd = tm.hidden_size, 2 if tm.bidirectional else 1
        out = {}
        for layer_idx in range(tm.num_layers):
            for d in range(nd):
                prefix = ("forward.", "backward.")[d] if tm.bidirectional else ""
                g = {k: run.grads[f"{prefix}{k}@{layer_idx}"] for k in ("U", "W", "b", "b_hn")
                     if f"{prefix}{k}@{layer_idx}" in run.grads}
                tag = f"_l{layer_idx}{SUFFIXES[d]}"
                out["weight_ih" + tag] = g["U"]
                out["weight_hh" + tag] = g["W"]
                out["bias_ih" + tag] = g["b"]
                out["bias_hh" + tag] = np.concatenate([g["b"][:2 * H], g["b_hn"]]) if "b_hn" in g else g["b"]
        return out

    # -------------------------------------------------------------- comparison
    @staticmethod
    def atol(dtype) -> float:
        return {"float64": 1e-10, "float32": 1e-5}[np.dtype(dtype).name]

    def assert_runs_close(self, got: Run, expected: Run, torch_module, dtype) -> None:
        """Every output, final state and gradient of ``got`` (rnnlab) equals ``expected`` (torch)."""
        atol = self.atol(dtype)
        for field in ("out", "h_n", "c_n", "dx", "dh0", "dc0"):
            a, b = getattr(got, field), getattr(expected, field)
            assert (a is None) == (b is None), field
            if a is not None:
                assert a.shape == b.shape, f"{field}: shape {a.shape} != torch's {b.shape}"
                np.testing.assert_allclose(a, b, rtol=0, atol=atol, err_msg=field)
        grads = self.rnnlab_grads_as_torch(got, torch_module)
        assert sorted(grads) == sorted(expected.grads)
        for name, g in grads.items():
            np.testing.assert_allclose(g, expected.grads[name], rtol=0, atol=atol, err_msg=f"grad of {name}")


@pytest.fixture(scope="session")
def ref() -> Reference:
    torch = pytest.importorskip("torch")
    return Reference(torch)
