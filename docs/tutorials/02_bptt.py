# %% [markdown]
# # 2. Backpropagation through time, derived and checked
#
# Training needs $\partial L / \partial \theta$ for every weight. The network unrolled over $T$
# steps is an ordinary feed-forward network whose layers share weights, so the chain rule applies
# as usual; the only new thing is that a shared weight collects one term per step.
#
# ## A scalar example
#
# Take scalar weights, $h_t = \tanh(u x_t + w h_{t-1})$, output $y_t = v h_t$ and the squared error
# $L_t = \tfrac12 (d_t - y_t)^2$ with targets $d_t$; the total loss is $L = \sum_t L_t$.
# For the output weight at step 3,
#
# $$\frac{\partial L_3}{\partial v} = \frac{\partial L_3}{\partial y_3}\,\frac{\partial y_3}{\partial v} = -(d_3 - y_3)\, h_3 .$$
#
# For the recurrent weight, $w$ reaches $L_3$ along every path through $h_3, h_2, h_1$:
#
# $$\frac{\partial L_3}{\partial w} = \sum_{k=1}^{3} \frac{\partial L_3}{\partial y_3}\,\frac{\partial y_3}{\partial h_3}
# \left(\prod_{j=k+1}^{3} \frac{\partial h_j}{\partial h_{j-1}}\right) \frac{\partial^{+} h_k}{\partial w},$$
#
# where $\partial h_j / \partial h_{j-1} = w\,(1 - h_j^2)$ and $\partial^{+} h_k / \partial w = (1 - h_k^2)\, h_{k-1}$
# is the direct dependence at step $k$. The code below computes both by these formulas and
# compares them with central finite differences.

# %%
import numpy as np

u, w, v = 0.7, 0.9, -1.3
x = np.array([0.5, -1.0, 2.0])
d = np.array([0.1, 0.4, -0.3])


def forward(u, w, v):
    h, hs = 0.0, [0.0]
    for t in range(3):
        h = np.tanh(u * x[t] + w * h)
        hs.append(h)
    hs = np.array(hs)
    y = v * hs[1:]
    return hs, y, 0.5 * (d - y) ** 2


hs, y, L = forward(u, w, v)
dL3_dv = -(d[2] - y[2]) * hs[3]
dL3_dw = 0.0
for k in range(1, 4):
    chain = np.prod([w * (1 - hs[j] ** 2) for j in range(k + 1, 4)])
    dL3_dw += -(d[2] - y[2]) * v * chain * (1 - hs[k] ** 2) * hs[k - 1]

eps = 1e-6
numeric_v = (forward(u, w, v + eps)[2][2] - forward(u, w, v - eps)[2][2]) / (2 * eps)
numeric_w = (forward(u, w + eps, v)[2][2] - forward(u, w - eps, v)[2][2]) / (2 * eps)
print(f"dL3/dv: formula {dL3_dv:.10f}  finite differences {numeric_v:.10f}")
print(f"dL3/dw: formula {dL3_dw:.10f}  finite differences {numeric_w:.10f}")
assert abs(dL3_dv - numeric_v) < 1e-8 and abs(dL3_dw - numeric_w) < 1e-8

# %% [markdown]
# ## The backward recursion
#
# Summing over paths is exponential if done naively; BPTT computes the same sums in one backward
# sweep. Define $\delta_t = \partial L / \partial h_t$ (all of $L$, not only $L_t$). Then
#
# $$\delta_T = \frac{\partial L_T}{\partial h_T}, \qquad
# \delta_t = \frac{\partial L_t}{\partial h_t} + \delta_{t+1}\, w\,(1 - h_{t+1}^2),$$
#
# and each weight's gradient is a sum over time of local terms:
# $\partial L/\partial w = \sum_t \delta_t (1 - h_t^2) h_{t-1}$,
# $\partial L/\partial u = \sum_t \delta_t (1 - h_t^2) x_t$,
# $\partial L/\partial v = -\sum_t (d_t - y_t) h_t$.

# %%
delta, grad = 0.0, {"u": 0.0, "w": 0.0, "v": 0.0}
for t in reversed(range(1, 4)):
    dy = -(d[t - 1] - y[t - 1])
    grad["v"] += dy * hs[t]
    delta = dy * v + delta  # the loss at step t, plus what came back from step t+1
    dz = delta * (1 - hs[t] ** 2)
    grad["w"] += dz * hs[t - 1]
    grad["u"] += dz * x[t - 1]
    delta = dz * w  # dL/dh_{t-1} through the recurrence
for name, value in grad.items():
    args = {"u": u, "w": w, "v": v}
    plus, minus = dict(args), dict(args)
    plus[name] += eps
    minus[name] -= eps
    numeric = (forward(**plus)[2].sum() - forward(**minus)[2].sum()) / (2 * eps)
    print(f"dL/d{name}: BPTT {value:+.10f}  finite differences {numeric:+.10f}")
    assert abs(value - numeric) < 1e-8

# %% [markdown]
# ## The same check on every cell of rnnlab
#
# rnnlab's layers implement this recursion with matrices, for the Elman cell, the LSTM and the GRU
# (no automatic differentiation anywhere). `rnnlab.gradcheck` compares a layer's `backward` with
# central finite differences in float64, for every parameter and the input; the worst relative
# error is printed per array.

# %%
import rnnlab

rng = np.random.default_rng(0)
x = rng.standard_normal((2, 5, 3))
for layer in [rnnlab.SimpleRNN(4, return_sequences=True, dtype="float64", seed=0),
              rnnlab.LSTM(4, return_sequences=True, dtype="float64", seed=0),
              rnnlab.GRU(4, return_sequences=True, dtype="float64", seed=0),
              rnnlab.GRU(4, return_sequences=True, reset_after=False, dtype="float64", seed=0)]:
    report = rnnlab.gradcheck(layer, x)
    print(type(layer).__name__, report)
    assert report.passed

# %% [markdown]
# Masks take part too: a padded step must contribute nothing, forward or backward.

# %%
mask = np.array([[True] * 5, [True, True, True, False, False]])
report = rnnlab.gradcheck(rnnlab.LSTM(4, return_sequences=True, dtype="float64", seed=1), x, mask=mask)
print(report)
assert report.passed
