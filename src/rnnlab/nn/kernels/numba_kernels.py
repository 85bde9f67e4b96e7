"""Fused elementwise kernels of one time step, compiled by numba (imported only through rnnlab.nn.kernels).

Each kernel does in one pass over a step's (B, H) units what the cells' NumPy path does in ten to
fifteen ufunc calls, reading and writing the same tape buffers under the cells' names
(:class:`rnnlab.nn.kernels.StepKernels`), so the two paths are interchangeable. The GEMMs stay
outside (NumPy's BLAS). Compiled code is cached on disk (``cache=True``): the first call of each
kernel and dtype compiles it, later processes load it. docs/performance.md explains the loops' shape
(one output per loop, per-gate views from 0, ``dy`` read whole).

Floating point: no ``nnan``/``ninf`` fast-math flags, so a NaN or inf in the input comes out as one
(the trainer's divergence checks rely on it); contraction and reassociation are allowed. Float64
uses libm's ``tanh``; float32 uses :func:`tanh32`, a rational approximation that vectorises.

Equations are the cells' (``rnnlab.nn.cells``), in the brief's notation; ``s(x) = (1 + tanh(x/2))/2``
as in :func:`rnnlab.nn.functional.sigmoid`.
"""

from __future__ import annotations

import math

from numba import njit, types
from numba.extending import overload
from numpy import (  # not through `np`: the test suite may swap rnnlab's `np` out
    float32,
    float64,
    floor,
    int32,
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
def lstm_forward(z, zh, b, c_prev, c_t, h_t):
    """One LSTM step after its GEMM: ``z`` (B, 4H) holds ``U x_t`` and becomes the gates ``i, f, g, o``
    (``i = s(z + zh + b)`` etc., ``g = tanh(.)``, with ``zh = h_{t-1} W^T``); ``c_t = f*c_prev + i*g``;
    ``h_t = o*tanh(c_t)``."""
    B, H = c_t.shape
    half = _const(c_t, 0.5)
    b_if, b_g, b_o = b[:2 * H], b[2 * H:3 * H], b[3 * H:]
    for r in range(B):  # per-gate views and loops of one output each, from 0: so each vectorises
        zr, zhr = z[r], zh[r]
        z_if, i, f, g, o = zr[:2 * H], zr[:H], zr[H:2 * H], zr[2 * H:3 * H], zr[3 * H:]
        zh_if, zh_g, zh_o = zhr[:2 * H], zhr[2 * H:3 * H], zhr[3 * H:]
        for k in range(2 * H):
            z_if[k] = _tanh((z_if[k] + zh_if[k] + b_if[k]) * half) * half + half  # i, f
        for j in range(H):
            g[j] = _tanh(g[j] + zh_g[j] + b_g[j])
        for j in range(H):
            o[j] = _tanh((o[j] + zh_o[j] + b_o[j]) * half) * half + half
        cr, cpr, hr = c_t[r], c_prev[r], h_t[r]
        for j in range(H):
            cr[j] = f[j] * cpr[j] + i[j] * g[j]
        for j in range(H):
            hr[j] = o[j] * _tanh(cr[j])


@njit(**_JIT)
def lstm_backward(dh, dy, t, dc_next, z, c_t, c_prev, tanh_c, dz, dc):
    """One LSTM step back. With ``dh_t = dh + dy[:, t]`` and ``tanh(c_t)`` recomputed into the scratch
    ``tanh_c``: ``dc = dc_next + dh_t*o*(1 - tanh^2 c_t)`` (dL/dc_t); into ``dz`` (B, 4H) the
    pre-activation gradients ``[dc*g*i(1-i); dc*c_prev*f(1-f); dc*i*(1-g^2); dh_t*tanh(c_t)*o(1-o)]``;
    then ``dc *= f`` (dc_{t-1})."""
    B, H = dh.shape
    one = _const(dh, 1.0)
    for r in range(B):  # per-gate views and loops of one output each, so that each vectorises
        zr, dzr, dhr, dyr, dcn, cr, cpr, tcr, dcr = (z[r], dz[r], dh[r], dy[r, t], dc_next[r], c_t[r], c_prev[r],
                                                     tanh_c[r], dc[r])
        i, f, g, o = zr[:H], zr[H:2 * H], zr[2 * H:3 * H], zr[3 * H:]
        di, df, dg, do = dzr[:H], dzr[H:2 * H], dzr[2 * H:3 * H], dzr[3 * H:]
        for j in range(H):
            tcr[j] = _tanh(cr[j])
        for j in range(H):
            do[j] = (dhr[j] + dyr[j]) * tcr[j] * o[j] * (one - o[j])
        for j in range(H):  # dL/dc_t
            dcr[j] = dcn[j] + (dhr[j] + dyr[j]) * o[j] * (one - tcr[j] * tcr[j])
        for j in range(H):
            di[j] = dcr[j] * g[j] * i[j] * (one - i[j])
        for j in range(H):
            df[j] = dcr[j] * cpr[j] * f[j] * (one - f[j])
        for j in range(H):
            dg[j] = dcr[j] * i[j] * (one - g[j] * g[j])
        for j in range(H):
            dcr[j] *= f[j]  # dc_{t-1}


# ---------------------------------------------------------------------------- GRU (reset_after)
@njit(**_JIT)
def gru_forward(gates, gh, b, b_hn, h_prev, hn, h_t):
    """One GRU step after its GEMM, PyTorch's form: ``gates`` (B, 3H) holds ``U x_t`` and becomes
    ``r, z, n``, with ``gh = h_{t-1} W^T``; ``hn = W_n h_{t-1} + b_hn``; ``n = tanh(U_n x_t + b_n + r*hn)``;
    ``h_t = n + z*(h_prev - n)``."""
    B, H = h_t.shape
    half = _const(h_t, 0.5)
    b_rz, b_n = b[:2 * H], b[2 * H:]
    for q in range(B):  # per-gate views and loops of one output each, so that each vectorises
        gq, ghq, hnq, hq, hpq = gates[q], gh[q], hn[q], h_t[q], h_prev[q]
        rz, r, z, n, gh_rz, gh_n = gq[:2 * H], gq[:H], gq[H:2 * H], gq[2 * H:], ghq[:2 * H], ghq[2 * H:]
        for k in range(2 * H):
            rz[k] = _tanh((rz[k] + gh_rz[k] + b_rz[k]) * half) * half + half
        for j in range(H):
            hnq[j] = gh_n[j] + b_hn[j]
        for j in range(H):
            n[j] = _tanh(n[j] + b_n[j] + r[j] * hnq[j])
        for j in range(H):
            hq[j] = n[j] + z[j] * (hpq[j] - n[j])


@njit(**_JIT)
def gru_backward(dh, dy, t, gates, h_prev, hn, dh_total, dg, dgh, dh_prev):
    """One GRU step back (PyTorch's form). ``dh_total = dh + dy[:, t]``; into ``dg`` the pre-activation
    gradients ``[dn*hn*r(1-r); dh_total*(h_prev - n)*z(1-z); dn]`` with ``dn = dh_total*(1-z)*(1-n^2)``;
    into ``dgh`` the recurrent side's (the n block times ``r``); ``dh_prev = dh_total*z`` (the cell
    then adds ``dgh W``)."""
    B, H = dh.shape
    one = _const(dh, 1.0)
    for q in range(B):  # per-gate views and loops of one output each, so that each vectorises
        gq, dgq, dghq, dtq, hpq, hnq, dhpq = gates[q], dg[q], dgh[q], dh_total[q], h_prev[q], hn[q], dh_prev[q]
        dhq, dyq = dh[q], dy[q, t]
        r, z, n = gq[:H], gq[H:2 * H], gq[2 * H:]
        dr, dz, dn = dgq[:H], dgq[H:2 * H], dgq[2 * H:]
        dr_h, dz_h, dn_h = dghq[:H], dghq[H:2 * H], dghq[2 * H:]
        for j in range(H):
            dtq[j] = dhq[j] + dyq[j]
        for j in range(H):
            dn[j] = dtq[j] * (one - z[j]) * (one - n[j] * n[j])
        for j in range(H):
            dn_h[j] = dn[j] * r[j]
        for j in range(H):
            dr[j] = dn[j] * hnq[j] * r[j] * (one - r[j])
        for j in range(H):
            dr_h[j] = dr[j]
        for j in range(H):
            dz[j] = dtq[j] * (hpq[j] - n[j]) * z[j] * (one - z[j])
        for j in range(H):
            dz_h[j] = dz[j]
        for j in range(H):
            dhpq[j] = dtq[j] * z[j]


# ---------------------------------------------------------------------------- Elman (tanh)
@njit(**_JIT)
def elman_tanh_forward(z, za, b):
    """``z <- tanh(z + za + b)``: ``a_t = tanh(U x_t + W a_{t-1} + b)``, in place (``z`` holds ``U x_t``)."""
    B, H = z.shape
    for r in range(B):
        zr, zar = z[r], za[r]
        for j in range(H):
            zr[j] = _tanh(zr[j] + zar[j] + b[j])


@njit(**_JIT)
def elman_tanh_backward(da, dy, t, a_t, dz):
    """``dz = (da + dy[:, t]) * (1 - a_t^2)``: the next step's gradient and the output's, through tanh."""
    B, H = da.shape
    one = _const(da, 1.0)
    for r in range(B):
        dar, dyr, ar, dzr = da[r], dy[r, t], a_t[r], dz[r]
        for j in range(H):
            dzr[j] = (dar[j] + dyr[j]) * (one - ar[j] * ar[j])


# ---------------------------------------------------------------------------- softmax cross-entropy rows
# exp(x) for x <= 0 in float32: x = n ln 2 + r with |r| <= ln 2 / 2, exp(r) by Cephes' expf polynomial
# (about 1 ulp), 2^n put together in the exponent bits of a float32 (an int32 scratch viewed as float32),
# so that every loop vectorises; below -87 (exp < 2e-38, nothing next to the row's sum >= 1) it clamps.
_LOG2E, _LN2_HI, _LN2_LO = _f(1.4426950408889634), _f(0.693359375), _f(-2.12194440e-4)
_E0, _E1, _E2 = _f(1.9875691500e-4), _f(1.3981999507e-3), _f(8.3334519073e-3)
_E3, _E4, _E5 = _f(4.1665795894e-2), _f(1.6666665459e-1), _f(5.0000001201e-1)
_EXP_LOW, _HALF = _f(-87.0), _f(0.5)


def _row_exp(zr, m, e, bits, scale):  # pragma: no cover - replaced by the overload below inside compiled code
    raise NotImplementedError


@overload(_row_exp, inline="always")
def _row_exp_impl(zr, m, e, bits, scale):
    """``e = exp(zr - m)`` over one row; returns ``sum(e)``. ``bits`` is an integer scratch row of the
    float's width and ``scale`` the same memory viewed as floats (float32 only)."""
    if zr.dtype == types.float32:
        def exp32(zr, m, e, bits, scale):
            for k in range(zr.shape[0]):
                x = zr[k] - m
                x = x if x > _EXP_LOW else _EXP_LOW
                n = floor(x * _LOG2E + _HALF)
                r = x - n * _LN2_HI
                r = r - n * _LN2_LO
                p = ((((_E0 * r + _E1) * r + _E2) * r + _E3) * r + _E4) * r + _E5
                e[k] = p * r * r + r + _ONE
                bits[k] = (int32(n) + int32(127)) << int32(23)  # 2^n, n in [-126, 0]
            s = float32(0.0)
            for k in range(zr.shape[0]):
                v = e[k] * scale[k]
                e[k] = v
                s += v
            return s
        return exp32

    def exp64(zr, m, e, bits, scale):
        s = 0.0
        for k in range(zr.shape[0]):
            v = math.exp(zr[k] - m)
            e[k] = v
            s += v
        return s
    return exp64


@njit(**_JIT)
def softmax_xent_rows(z, zi, ids, valid, weight, grad, keep, bits, scale, m_bits, m_val, absmask, shift, inf_bits,
                      terms):
    """Softmax cross-entropy with class-id targets, one pass per row of ``z`` (N, C).

    For each row: ``m = max z`` (on the integer view ``zi``: a float's bits, sign-folded, order like the
    float, and that loop vectorises; it also finds a NaN or inf), ``s = sum exp(z - m)``,
    ``terms[r] = log s - (z[ids[r]] - m)`` (``-log softmax(z)[ids[r]]``). With ``keep``, row r of
    ``grad`` becomes ``weight * (exp(z - m) / s - onehot(ids[r]))``; without it ``grad`` is one
    scratch row. Rows where ``valid`` is False get term 0 (and gradient 0). Returns -1, or the first row
    holding a NaN or inf (any row, valid or not; the caller raises). ``m_bits``/``m_val`` are one
    integer and the same memory as a float; ``absmask``, ``shift``, ``inf_bits`` are ``0x7f..f``, the
    width minus one, and the bits of +inf, in ``zi``'s integer type.
    """
    N, C = z.shape
    for r in range(N):
        zir = zi[r]
        key = zir[0] ^ ((zir[0] >> shift) & absmask)
        mag = zir[0] & absmask
        for k in range(C):
            v = zir[k]
            key = max(key, v ^ ((v >> shift) & absmask))
            mag = max(mag, v & absmask)
        if mag >= inf_bits:
            return r
        g = grad[r] if keep else grad[0]
        if not valid[r]:
            terms[r] = 0.0
            if keep:
                for k in range(C):
                    g[k] = 0.0
            continue
        m_bits[0] = key ^ ((key >> shift) & absmask)
        m = m_val[0]
        zr = z[r]
        s = _row_exp(zr, m, g, bits, scale)
        terms[r] = math.log(s) - (zr[ids[r]] - m)
        if keep:
            w = weight / s
            for k in range(C):
                g[k] *= w
            g[ids[r]] -= weight
    return -1
