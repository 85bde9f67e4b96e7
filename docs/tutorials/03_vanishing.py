# %% [markdown]
# # 3. Vanishing and exploding gradients
#
# The gradient that a loss at the last step $T$ sends back to step $t$ is a product of step
# Jacobians,
#
# $$\frac{\partial L_T}{\partial h_t} = \left(\prod_{k=t+1}^{T} \frac{\partial h_k}{\partial h_{k-1}}\right)^{\top} \frac{\partial L_T}{\partial h_T},
# \qquad \frac{\partial h_k}{\partial h_{k-1}} = \operatorname{diag}\big(f'(z_k)\big)\, W .$$
#
# When the Jacobians' norms stay below 1 the product shrinks geometrically with the distance
# $T - t$ (vanishing); above 1 it grows (exploding). The sigmoid's derivative is at most $1/4$,
# tanh's at most 1, ReLU's 0 or 1: the activation sets how fast the signal fades. The LSTM's cell
# path replaces the product by $\partial c_t / \partial c_{t-1} = \operatorname{diag}(f_t)$, the
# forget gate, which can stay near 1.
#
# `rnnlab.lab.diagnostics.gradient_through_time` measures $\lVert \partial L_T / \partial h_t \rVert$ at
# every step, through each layer's own backward pass, on a float64 copy of the layer.

# %%
import matplotlib.pyplot as plt
import numpy as np

import rnnlab
from rnnlab.lab.diagnostics import gradient_through_time

T, H, D = 60, 32, 8
x = np.random.default_rng(0).standard_normal((16, T, D))
layers = {
    "RNN, sigmoid": rnnlab.SimpleRNN(H, activation="sigmoid", input_size=D, seed=1),
    "RNN, tanh": rnnlab.SimpleRNN(H, activation="tanh", input_size=D, seed=1),
    "RNN, relu": rnnlab.SimpleRNN(H, activation="relu", input_size=D, seed=1),
    "LSTM": rnnlab.LSTM(H, input_size=D, seed=1),
    "GRU": rnnlab.GRU(H, input_size=D, seed=1),
}
flows = {name: gradient_through_time(layer, x) for name, layer in layers.items()}

fig, ax = plt.subplots(figsize=(7, 4))
lags = np.arange(T)
for name, flow in flows.items():
    mean = flow.h.mean(axis=0)[::-1]  # index 0 = the last step, lag 0
    ax.semilogy(lags, np.maximum(mean, 1e-300), label=name)
ax.set_xlabel("lag T - t (steps back from the loss)")
ax.set_ylabel("mean ||dL_T / dh_t||")
ax.legend()
ax.set_title("How much gradient reaches step t")
plt.show()

# %%
for name, flow in flows.items():
    mean = flow.h.mean(axis=0)[::-1]
    print(f"{name:14s} lag 10: {mean[10]:.2e}   lag 50: {mean[50]:.2e}")
sigmoid, lstm = flows["RNN, sigmoid"].h.mean(axis=0)[::-1], flows["LSTM"].h.mean(axis=0)[::-1]
assert sigmoid[50] < 1e-10 < lstm[10]

# %% [markdown]
# The sigmoid RNN has lost all signal within a few steps: its Jacobian's norm is at most
# $\lVert W \rVert / 4$. The gated cells carry more of it further back.
#
# ## Exploding gradients and clipping
#
# Scale the recurrent matrix up and the product grows instead. Gradient-norm clipping rescales the
# whole gradient when its norm $\lVert g \rVert$ exceeds a threshold $c$:
# $g \leftarrow g \cdot \min\!\left(1, c / \lVert g \rVert\right)$. The direction is kept; only the step
# length is bounded.

# %%
relu = rnnlab.SimpleRNN(H, activation="relu", input_size=D, seed=1, dtype="float64")
relu(x[:, :5])  # build
relu.params["W"][...] = 1.5 * np.eye(H)
flow = gradient_through_time(relu, x[:, :30])
print("growth over 30 steps:", f"{flow.h.mean(axis=0)[0]:.3e}")
assert flow.h.mean(axis=0)[0] > 1e3

model = rnnlab.Sequential([relu, rnnlab.Dense(1, dtype="float64", seed=0)])
loss = rnnlab.losses.get("mse")
value = loss(model(x[:, :30]), np.zeros((16, 1)))
model.zero_grad()
model.backward(loss.backward())
before = rnnlab.optim.global_norm(model.named_grads())
returned = rnnlab.optim.clip_grad_norm(model, 1.0)
after = rnnlab.optim.global_norm(model.named_grads())
print(f"gradient norm {before:.3e} -> {after:.6f} after clipping at 1")
assert abs(returned - before) < 1e-6 * before and abs(after - 1.0) < 1e-5

# %% [markdown]
# `rnnlab experiment vanishing`, `rnnlab experiment exploding` and `rnnlab diagnose RUN` run the
# same measurements on a larger scale and write reports; see the [API](../api/diagnostics.md).
