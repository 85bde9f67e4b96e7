"""Fused elementwise kernels of one time step, compiled by numba (imported only through rnnlab.kernels).

Each kernel does in one pass over a step's (B, H) units what the cells' NumPy path does in ten to
fifteen ufunc calls, reading and writing the same tape buffers, so the two paths are
interchangeable. The GEMMs stay outside (NumPy's BLAS). Compiled code is cached on disk
(``cache=True``): the first call of each kernel and dtype compiles it, later processes load it.

Floating point: no ``nnan``/``ninf`` fast-math flags, so a NaN or inf in the input comes out as one
(the trainer's divergence checks rely on it); contraction and reassociation are allowed. Float64
uses libm's ``tanh``; float32 uses :func:`tanh32`, a rational approximation that vectorises.

Equations are the cells' (``rnnlab.cells``), in the brief's notation; ``s(x) = (1 + tanh(x/2))/2``
as in :func:`rnnlab.functional.sigmoid`.
"""

from __future__ import annotations

import math

from numba import njit, types
from numba.extending import overload
from numpy import (  # not through `np`: the test suite may swap rnnlab's `np` out
    float32,
    float64,
)

_FLAGS = {"contract", "arcp", "nsz", "reassoc"}
_JIT = {"cache": True, "fastmath": _FLAGS, "error_model": "numpy", "boundscheck": False, "nogil": True}

_f = float32
# tanh(x) ~ x P(x^2) / Q(x^2) on |x| <= 9, fitted here for the relative error (Lawson-weighted least
# squares; max 6.9e-9 in exact arithmetic, under 6 float32 ulps evaluated in float32, see the tests).
_P0, _P1, _P2, _P3 = _f(1.0), _f(0.1308576880606498), _f(0.0031058839280825906), _f(1.117347095595752e-05)
_P4, _P5, _P6 = _f(-2.029705998068841e-08), _f(5.3094303939759645e-11), _f(-8.562002310945092e-14)
_Q0, _Q1, _Q2, _Q3 = _f(1.0), _f(0.4641909797835825), _f(0.024502955555767716), _f(0.00025488932095481124)
_NINE, _ONE = _f(9.0), _f(1.0)


def tanh32(x):
    """float32 ``tanh`` to within 6 ulps; NaN in, NaN out (the clamps are written to let it through)."""
    xa = _NINE if x > _NINE else x  # tanh(9) rounds to 1 - 2^-24 in float32: beyond, the clamp is exact
    xc = -_NINE if xa < -_NINE else xa
    u = xc * xc
    p = ((((((_P6 * u + _P5) * u + _P4) * u + _P3) * u + _P2) * u + _P1) * u + _P0) * xc
    q = ((_Q3 * u + _Q2) * u + _Q1) * u + _Q0
    y = p / q
    ya = _ONE if y > _ONE else y
    return -_ONE if ya < -_ONE else ya


def _tanh(x):  # pragma: no cover - replaced by the overload below inside compiled code
    return math.tanh(x)


@overload(_tanh)
def _tanh_impl(x):
    if x == types.float32:
        return tanh32
    return lambda x: math.tanh(x)


def _const(array, value):  # pragma: no cover - replaced by the overload below inside compiled code
    return array.dtype.type(value)


@overload(_const, inline="always")
def _const_impl(array, value):
    """``value`` in the dtype of ``array``: a bare Python float would promote float32 work to float64."""
    if array.dtype == types.float32:
        return lambda array, value: float32(value)
    return lambda array, value: float64(value)


@njit(**_JIT)
def tanh_array(x, out):
    """``out = tanh(x)`` elementwise with the kernels' ``tanh`` (1-D arrays; for the tests)."""
    for k in range(x.shape[0]):
        out[k] = _tanh(x[k])


# ---------------------------------------------------------------------------- LSTM
@njit(**_JIT)
def lstm_forward(z, zh, bias, c_prev, c, h):
    """One LSTM step after its GEMMs, in one pass over the step's units.

    In: ``z`` (B, 4H) = ``U x_t`` (the bias is added here, so the input projection never makes a
    pass of its own over the (T, B, 4H) tape to add it), ``zh`` (B, 4H) = ``h_{t-1} W^T``, ``bias``
    (4H,), ``c_prev`` (B, H). Out: ``z`` <- ``i, f, g, o`` with ``i = s(z + zh + b)`` etc. and
    ``g = tanh(.)``, ``s(x) = (1 + tanh(x/2))/2``; ``c = f*c_prev + i*g``; ``h = o*tanh(c)``.
    """
    B, H = c.shape
    half = _const(c, 0.5)
    b_if, b_g, b_o = bias[:2 * H], bias[2 * H:3 * H], bias[3 * H:]
    for b in range(B):  # per-gate views and loops of one output each, from 0: so each vectorises
        zb, zhb = z[b], zh[b]
        z_if, i, f, g, o = zb[:2 * H], zb[:H], zb[H:2 * H], zb[2 * H:3 * H], zb[3 * H:]
        zh_if, zh_g, zh_o = zhb[:2 * H], zhb[2 * H:3 * H], zhb[3 * H:]
        for k in range(2 * H):
            z_if[k] = _tanh((z_if[k] + zh_if[k] + b_if[k]) * half) * half + half  # i, f
        for j in range(H):
            g[j] = _tanh(g[j] + zh_g[j] + b_g[j])
        for j in range(H):
            o[j] = _tanh((o[j] + zh_o[j] + b_o[j]) * half) * half + half
        cb, cpb, hb = c[b], c_prev[b], h[b]
        for j in range(H):
            cb[j] = f[j] * cpb[j] + i[j] * g[j]
        for j in range(H):
            hb[j] = o[j] * _tanh(cb[j])


@njit(**_JIT)
def lstm_backward(dh, dy, ty, dc_next, gates, c, c_prev, tanh_c, dz, dc_prev):
    """One LSTM step back. With ``dh_t = dh + dy[:, ty]`` (the next step's gradient and the output's,
    read from the whole (B, T, H) output gradient, whose rows are contiguous: a (B, H) slice of it
    would be a strided array, which the vectoriser cannot assume contiguous) and ``tanh(c_t)``
    recomputed from ``c`` into the (B, H) scratch ``tanh_c`` (the forward pass keeps no copy:
    recomputing is cheaper than reading one back from memory):
    ``dc = dc_next + dh_t*o*(1 - tanh^2 c_t)`` (into ``dc_prev``, then scaled by ``f``); into ``dz``
    (B, 4H) the pre-activation gradients
    ``[dc*g*i(1-i); dc*c_prev*f(1-f); dc*i*(1-g^2); dh_t*tanh(c_t)*o(1-o)]``; ``dc_prev = dc*f``."""
    B, H = dh.shape
    one = _const(dh, 1.0)
    for b in range(B):  # per-gate views and loops of one output each, so that each vectorises
        gb, dzb, dhb, dyb, dcn, cb, cpb, tcb, dcp = (gates[b], dz[b], dh[b], dy[b, ty], dc_next[b], c[b], c_prev[b],
                                                     tanh_c[b], dc_prev[b])
        i, f, g, o = gb[:H], gb[H:2 * H], gb[2 * H:3 * H], gb[3 * H:]
        di, df, dg, do = dzb[:H], dzb[H:2 * H], dzb[2 * H:3 * H], dzb[3 * H:]
        for j in range(H):
            tcb[j] = _tanh(cb[j])
        for j in range(H):
            do[j] = (dhb[j] + dyb[j]) * tcb[j] * o[j] * (one - o[j])
        for j in range(H):  # dL/dc_t
            dcp[j] = dcn[j] + (dhb[j] + dyb[j]) * o[j] * (one - tcb[j] * tcb[j])
        for j in range(H):
            di[j] = dcp[j] * g[j] * i[j] * (one - i[j])
        for j in range(H):
            df[j] = dcp[j] * cpb[j] * f[j] * (one - f[j])
        for j in range(H):
            dg[j] = dcp[j] * i[j] * (one - g[j] * g[j])
        for j in range(H):
            dcp[j] *= f[j]  # dc_{t-1}


# ---------------------------------------------------------------------------- GRU (reset_after)
@njit(**_JIT)
def gru_forward(zx, gh, bias, b_hn, h_prev, hn, h):
    """One GRU step, PyTorch's form. In: ``zx`` (B, 3H) = ``U x_t`` (the bias ``bias`` (3H,) is added
    here), ``gh`` (B, 3H) = ``h_{t-1} W^T``. Out: ``zx`` <- gates ``r, z, n``; ``hn = W_n h_{t-1} + b_hn``;
    ``h = n + z*(h_prev - n)`` with ``n = tanh(U_n x_t + b_n + r*hn)``."""
    B, H = h.shape
    half = _const(h, 0.5)
    b_rz, b_n = bias[:2 * H], bias[2 * H:]
    for b in range(B):  # per-gate views and loops of one output each, so that each vectorises
        zb, ghb, hnb, hb, hpb = zx[b], gh[b], hn[b], h[b], h_prev[b]
        rz, r, z, n, gh_rz, gh_n = zb[:2 * H], zb[:H], zb[H:2 * H], zb[2 * H:], ghb[:2 * H], ghb[2 * H:]
        for k in range(2 * H):
            rz[k] = _tanh((rz[k] + gh_rz[k] + b_rz[k]) * half) * half + half
        for j in range(H):
            hnb[j] = gh_n[j] + b_hn[j]
        for j in range(H):
            n[j] = _tanh(n[j] + b_n[j] + r[j] * hnb[j])
        for j in range(H):
            hb[j] = n[j] + z[j] * (hpb[j] - n[j])


@njit(**_JIT)
def gru_backward(dh_next, dy, ty, gates, h_prev, hn, dh, dg, dgh, dh_prev):
    """One GRU step back (PyTorch's form). With ``dh = dh_next + dy[:, ty]`` (written to the (B, H)
    scratch ``dh``: the next step's gradient and the output's, as in :func:`lstm_backward`), into
    ``dg`` the pre-activation gradients ``[dn*hn*r(1-r); dh*(h_prev - n)*z(1-z); dn]`` with
    ``dn = dh*(1-z)*(1-n^2)``, into ``dgh`` the recurrent side's (the n block times ``r``), and
    ``dh_prev = dh*z`` (the loop adds ``dgh W``)."""
    B, H = dh.shape
    one = _const(dh, 1.0)
    for b in range(B):  # per-gate views and loops of one output each, so that each vectorises
        gb, dgb, dghb, db, hpb, hnb, dhpb = gates[b], dg[b], dgh[b], dh[b], h_prev[b], hn[b], dh_prev[b]
        dnb, dyb = dh_next[b], dy[b, ty]
        r, z, n = gb[:H], gb[H:2 * H], gb[2 * H:]
        dr, dz, dn = dgb[:H], dgb[H:2 * H], dgb[2 * H:]
        dr_h, dz_h, dn_h = dghb[:H], dghb[H:2 * H], dghb[2 * H:]
        for j in range(H):
            db[j] = dnb[j] + dyb[j]
        for j in range(H):
            dn[j] = db[j] * (one - z[j]) * (one - n[j] * n[j])
        for j in range(H):
            dn_h[j] = dn[j] * r[j]
        for j in range(H):
            dr[j] = dn[j] * hnb[j] * r[j] * (one - r[j])
        for j in range(H):
            dr_h[j] = dr[j]
        for j in range(H):
            dz[j] = db[j] * (hpb[j] - n[j]) * z[j] * (one - z[j])
        for j in range(H):
            dz_h[j] = dz[j]
        for j in range(H):
            dhpb[j] = db[j] * z[j]


# ---------------------------------------------------------------------------- Elman (tanh)
@njit(**_JIT)
def elman_tanh_forward(z, za, bias):
    """``z <- tanh(z + za + bias)``: ``a_t = tanh(U x_t + W a_{t-1} + b)``, in place (``z`` holds ``U x_t``)."""
    B, H = z.shape
    for b in range(B):
        zb, zab = z[b], za[b]
        for j in range(H):
            zb[j] = _tanh(zb[j] + zab[j] + bias[j])


@njit(**_JIT)
def elman_tanh_backward(da, dy, ty, a, dz):
    """``dz = (da + dy[:, ty]) * (1 - a^2)``: the next step's gradient and the output's (as in
    :func:`lstm_backward`), through tanh."""
    B, H = da.shape
    one = _const(da, 1.0)
    for b in range(B):
        dab, dyb, ab, dzb = da[b], dy[b, ty], a[b], dz[b]
        for j in range(H):
            dzb[j] = (dab[j] + dyb[j]) * (one - ab[j] * ab[j])
