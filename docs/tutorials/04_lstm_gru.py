# %% [markdown]
# # 4. LSTM and GRU: the gates, the cell path, chrono initialisation
#
# The LSTM keeps a second state, the cell $c_t$, and three gates decide what flows through it
# ($\sigma$ is the logistic sigmoid, $\odot$ the elementwise product):
#
# $$i_t = \sigma(U_i x_t + W_i h_{t-1} + b_i), \quad f_t = \sigma(U_f x_t + W_f h_{t-1} + b_f), \quad
# o_t = \sigma(U_o x_t + W_o h_{t-1} + b_o),$$
#
# $$\tilde c_t = \tanh(U_g x_t + W_g h_{t-1} + b_g), \qquad c_t = f_t \odot c_{t-1} + i_t \odot \tilde c_t,
# \qquad h_t = o_t \odot \tanh(c_t).$$
#
# Along the cell path the step Jacobian is just the forget gate,
# $\partial c_t / \partial c_{t-1} = \operatorname{diag}(f_t)$: when $f_t$ stays near 1 the gradient
# travels back through many steps without the repeated multiplication by $W$ that makes the vanilla
# RNN's gradient vanish. The GRU merges cell and state and uses two gates:
#
# $$r_t = \sigma(U_r x_t + W_r h_{t-1} + b_r), \quad z_t = \sigma(U_z x_t + W_z h_{t-1} + b_z),$$
#
# $$n_t = \tanh(U_n x_t + r_t \odot (W_n h_{t-1} + b_{hn}) + b_n),$$
#
# $$h_t = (1 - z_t) \odot n_t + z_t \odot h_{t-1}.$$
#
# ## The gates on a real text
#
# Every recurrent layer returns its gates' activations from the last forward call with
# `activations()`. Here a character LSTM is trained for a few seconds on a paragraph, then run over
# a sentence.

# %%
import matplotlib.pyplot as plt
import numpy as np

import rnnlab
from rnnlab.data.text import Vocabulary, char_tokenize

text = ("The cell state runs straight down the entire chain, with only some minor linear interactions. "
        "It is very easy for information to just flow along it unchanged. The gates are a way to "
        "optionally let information through. They are composed out of a sigmoid layer and a "
        "pointwise multiplication operation. ") * 4
vocab = Vocabulary().fit([char_tokenize(text)])
ids = np.array(vocab.encode(char_tokenize(text)))
T = 40
windows = np.stack([ids[i:i + T + 1] for i in range(0, len(ids) - T - 1, 7)])
V = len(vocab)
lstm = rnnlab.LSTM(48, return_sequences=True, seed=1)
model = rnnlab.Sequential([rnnlab.Embedding(V, 16, seed=0), lstm, rnnlab.Dense(V, seed=2)])
history = model.fit(windows[:, :-1], windows[:, 1:], loss="cross_entropy", optimizer=rnnlab.optim.Adam(lr=0.01),
                    epochs=15, batch_size=32, seed=0)
print(f"cross-entropy {history['loss'][0]:.2f} -> {history['loss'][-1]:.2f} nats per character")

# %%
sentence = "The gates are a way to let information through."
model(np.array([vocab.encode(char_tokenize(sentence))]))
gates = lstm.activations()  # each (B, T, H)
fig, axes = plt.subplots(4, 1, figsize=(10, 6), sharex=True)
for ax, name in zip(axes, ["i", "f", "o", "c"]):
    ax.imshow(gates[name][0, :, :16].T, aspect="auto", cmap="RdBu_r", vmin=-1, vmax=1)
    ax.set_ylabel(name)
axes[-1].set_xticks(range(len(sentence)))
axes[-1].set_xticklabels(list(sentence), fontsize=7)
axes[0].set_title("input, forget and output gates and the cell state of 16 units, character by character")
plt.show()

# %% [markdown]
# The activation viewer shows the same quantities unit by unit over a text: `rnnlab inspect RUN
# --text "..."` writes its page for a trained run, and `rnnlab.lab.viewer` builds it from any model.
# Here it runs over the opening of the paragraph the model learnt.

# %%
from pathlib import Path

from rnnlab.lab.viewer import render_html, trace

passage = char_tokenize(text[:200])
traced = trace(model, np.array(vocab.encode(passage)), next_token=True)
page = render_html(passage, traced, title="A character LSTM's gates over its training text", quantity="f")
Path("published").mkdir(exist_ok=True)  # the site publishes this folder beside the tutorial's page
Path("published/viewer.html").write_text(page, encoding="utf-8")
print(f"{len(traced.layers)} recurrent layer, {traced.steps} characters: the viewer page is {len(page) // 1024} KB")

# %% [markdown]
# Choose the quantity (`i`, `f`, `g`, `o`, the cell `c`, the output `h`, or the probability of the
# next character) and the unit; hovering a character shows its value.
#
# <iframe src="04_lstm_gru_files/viewer.html" title="The activation viewer" style="width: 100%; height: 480px; border: 1px solid #ccc"></iframe>
#
# <a href="04_lstm_gru_files/viewer.html">The viewer on a page of its own</a>.
#
# ## The cell path carries the gradient
#
# `gradient_through_time` records both $\lVert \partial L_T / \partial h_t \rVert$ and
# $\lVert \partial L_T / \partial c_t \rVert$. With the mean forget gate $\bar f$, the cell gradient after
# $k$ steps is roughly $\bar f^{\,k}$.

# %%
from rnnlab.lab.diagnostics import forget_gate_profile, gradient_through_time

x = np.random.default_rng(0).standard_normal((16, 200, 8))
default = rnnlab.LSTM(32, input_size=8, seed=3)
chrono = rnnlab.LSTM(32, input_size=8, seed=3, bias_initializer="chrono:200")
for name, layer in [("default (forget bias 1)", default), ("chrono, T_max = 200", chrono)]:
    flow = gradient_through_time(layer, x)
    f = forget_gate_profile(layer, x).mean()
    c = flow.c.mean(axis=0)[::-1]
    print(f"{name:24}  mean forget gate {f:.3f}   ||dL/dc|| 50 steps back {c[50]:.1e}, 150 back {c[150]:.1e}")

# %% [markdown]
# ## Chrono initialisation
#
# Tallec and Ollivier (2018) read the forget gate as a time constant: a unit with forget gate $f$
# remembers for about $1 / (1 - f)$ steps. **Chrono initialisation** sets the forget biases to
# $b_f \sim \log U(1, T_{\max} - 1)$ and the input biases to $b_i = -b_f$, so the units' memory spans
# are spread up to $T_{\max}$ steps from the start of training, instead of all starting near
# $1 / (1 - \sigma(1)) \approx 3.7$ steps. With it the cell gradient above survives hundreds of
# steps at initialisation. `bias_initializer="chrono:T_MAX"` on `LSTM` and `GRU` (on the GRU's
# update gate), or `init = "chrono:T_MAX"` in a run configuration.

# %%
H = 32
b = chrono.params["b"]
spans = 1 / (1 - 1 / (1 + np.exp(-b[H:2 * H])))
print("memory spans of the chrono units (steps):", np.round(np.sort(spans)[::4]).astype(int))
assert spans.max() > 20 and np.allclose(b[:H], -b[H:2 * H])
