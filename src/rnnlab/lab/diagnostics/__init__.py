"""Gradient flow made measurable: how much of a gradient survives the trip back through time.

For a recurrent layer ``a_t = f(U x_t + W a_{t-1} + b)`` the gradient of a loss at the last step T
reaches step t through the product of the step Jacobians::

    dL_T/ds_t = J_{t+1}^T J_{t+2}^T ... J_T^T dL_T/ds_T,      J_k = ds_k/ds_{k-1}

where ``s_t`` is the state carried out of step t (``h_t``, or ``[h_t; c_t]`` for the LSTM). When the
norms of the ``J_k`` stay below 1 the product shrinks geometrically (vanishing gradients), above 1 it
grows (exploding gradients); Bengio, Simard & Frasconi (1994), Pascanu, Mikolov & Bengio (2013).
This package measures every piece of that picture:

======================================  ========================================================
:func:`gradient_through_time`           ``||dL_T/dh_t||`` (and ``||dL_T/dc_t||``) for t = T..1, of a
                                        loss on the last step's state only: pure propagation
:func:`gradient_through_time_of_loss`   ``||dL/dh_t||`` of a model's real loss, per recurrent layer
:func:`step_jacobians`                  the exact ``J_t`` per sequence and step, (B, T, S, S)
:func:`jacobian_norms`                  ``||J_t||_2`` per step
:func:`running_products`                ``||J_T ... J_{t+1}||_2``: the factor from step T back to t
:func:`weight_spectrum`                 spectral radius and largest singular value of ``W``
:func:`forget_gate_profile`             the LSTM's mean forget gate ``f_t`` per step
:class:`GradientMonitor`                per-parameter gradient norms and update/weight ratios
                                        during training (a :class:`~rnnlab.callbacks.Callback`)
:class:`GradientReport`                 every recurrent layer of a model labelled ``vanishing``,
                                        ``healthy`` or ``exploding``; :func:`diagnose` for a run
                                        directory, ``rnnlab diagnose RUN`` on the command line
======================================  ========================================================

Every probe works on a float64 copy of the layer or model (same weights, converted exactly), so the
user's module is left as it was (flags, gradients, tape, carried state) and a gradient that vanishes
to 1e-40 is measured rather than flushed to zero by float32. Arrays of one layer are in its
*processing order* (reversed time for ``go_backwards``), as ``Recurrent.grad_norms`` is.

The step Jacobians, in the notation of the cells (``s`` the logistic sigmoid)::

    Elman   dh_t/dh_{t-1} = diag(f'(z_t)) W                     f' from the output: 1 - a^2, a(1-a), 1[a > 0]
    LSTM    dc_t/dc_{t-1} = diag(f_t)                            (the cell path, the constant error carousel)
            dc_t/dh_{t-1} = diag(c_{t-1} s'(f)) W_f + diag(g_t s'(i)) W_i + diag(i_t phi'(g)) W_g
            dh_t/dc_{t-1} = diag(o_t (1 - tanh^2 c_t)) diag(f_t)
            dh_t/dh_{t-1} = diag(tanh(c_t) s'(o)) W_o + diag(o_t (1 - tanh^2 c_t)) dc_t/dh_{t-1}
    GRU     dh_t/dh_{t-1} = diag(z_t) + diag(1 - z_t) dn_t/dh_{t-1} + diag(h_{t-1} - n_t) dz_t/dh_{t-1}

so the LSTM's ``dc_t/dc_{t-1}`` is ``diag(f_t)`` plus nothing else: the mean forget gate along the
sequence is how fast the cell path forgets. :func:`step_jacobians` does not code these formulas
again: it obtains the Jacobians from the cells' own backward passes (and the tests compare them with
finite differences of the forward pass).

One file per idea: ``probes`` (the float64 copies the probes run on), ``flow`` (gradient norms through
time), ``jacobians`` (step Jacobians and their products), ``weights`` (spectrum of ``W``, forget gates),
``monitor`` (the training callback), ``report`` (thresholds, labels, the report of a model) and ``run``
(the report of a run directory); every public name is importable from the package.
"""

from __future__ import annotations

from rnnlab.lab.diagnostics.flow import GradientFlow, gradient_through_time, gradient_through_time_of_loss
from rnnlab.lab.diagnostics.jacobians import jacobian_norms, running_products, step_jacobians
from rnnlab.lab.diagnostics.monitor import GradientMonitor
from rnnlab.lab.diagnostics.report import (
    EXPLODING_ABOVE,
    LABELS,
    VANISHING_BELOW,
    GradientReport,
    LayerGradient,
    classify,
    gradient_report,
)
from rnnlab.lab.diagnostics.run import SPLITS, diagnose
from rnnlab.lab.diagnostics.weights import forget_gate_profile, weight_spectrum

__all__ = ["VANISHING_BELOW", "EXPLODING_ABOVE", "LABELS", "GradientFlow", "gradient_through_time",
           "gradient_through_time_of_loss", "step_jacobians", "jacobian_norms", "running_products",
           "weight_spectrum", "forget_gate_profile", "GradientMonitor", "LayerGradient", "GradientReport",
           "classify", "gradient_report", "diagnose", "SPLITS"]

