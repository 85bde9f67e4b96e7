# %% [markdown]
# # 1. The vanilla RNN by hand
#
# The Elman network reads one input vector per time step and keeps a hidden state $a_t$ that it
# carries from one step to the next:
#
# $$a_t = f(U x_t + W a_{t-1} + b), \qquad y_t = g(V a_t + c).$$
#
# $U$ maps the input into the hidden layer, $W$ maps the previous state, $V$ maps the state to the
# output; $b$ and $c$ are biases. The same five arrays are used at every step: that weight sharing
# is what makes the network recurrent. This tutorial builds the network of the course's example
# (five inputs, three hidden units, one output), counts its parameters, runs it by hand in NumPy and
# checks the hand computation against rnnlab.

# %%
import numpy as np

import rnnlab

model = rnnlab.Sequential([rnnlab.SimpleRNN(3, input_size=5, return_sequences=True, seed=0), rnnlab.Dense(1, seed=0)])
model.summary(input_shape=(None, 4, 5));

# %% [markdown]
# The count: $U$ has $3 \times 5 = 15$ entries, $W$ has $3 \times 3 = 9$, $b$ has 3, $V$ has
# $1 \times 3 = 3$ and $c$ has 1, so $15 + 9 + 3 + 3 + 1 = 31$.

# %%
print({name: p.shape for name, p in model.params.items()})
assert model.count_params() == 31

# %% [markdown]
# ## One-hot inputs
#
# A symbol from a vocabulary of five becomes a vector with a single 1: symbol $k$ is the unit
# vector $e_k$. Then $U x_t$ simply picks column $k$ of $U$. Inputs always have the shape
# (batch, timesteps, features).

# %%
ids = np.array([[0, 3, 1, 4]])  # one sequence of four symbols
x = rnnlab.one_hot(ids, 5)
print(x.shape)
print(x[0])

# %% [markdown]
# ## The forward pass by hand
#
# With $f = \tanh$, $g$ the identity and $a_0 = 0$, step by step:

# %%
U, W, b = (model.params[f"0.{k}"].astype(np.float64) for k in "UWb")
V, c = model.params["1.V"].astype(np.float64), model.params["1.c"].astype(np.float64)
a = np.zeros(3)
by_hand = []
for t in range(4):
    a = np.tanh(U @ x[0, t] + W @ a + b)
    by_hand.append(V @ a + c)
by_hand = np.array(by_hand)
print(by_hand.ravel())

# %%
y = model(x)
print(y.ravel())
np.testing.assert_allclose(y[0], by_hand, rtol=1e-5, atol=1e-6)

# %% [markdown]
# The library's output equals the five lines of NumPy above (to float32's precision: the model
# computes in float32 by default). The column picked by the one-hot input is visible directly:
# at $t = 1$ the state is $\tanh(U_{:,0} + b)$.

# %%
np.testing.assert_allclose(np.tanh(U[:, 0] + b), model.layers[0](x)[0, 0], rtol=1e-5)

# %% [markdown]
# ## Learning something
#
# The smallest useful task: predict, at each step, whether the symbols seen so far contain a 4.
# The answer needs memory (the 4 may be several steps back), which is exactly what $a_t$ carries.

# %%
rng = np.random.default_rng(0)
ids = rng.integers(0, 5, size=(512, 8))
targets = (np.maximum.accumulate(ids == 4, axis=1)).astype(np.float32)[..., None]
history = model.fit(rnnlab.one_hot(ids, 5), targets, loss="bce_with_logits", optimizer=rnnlab.optim.Adam(lr=0.05),
                    epochs=30, batch_size=32, seed=0)
print(f"loss {history['loss'][0]:.3f} -> {history['loss'][-1]:.3f}")

# %%
test = np.array([[0, 1, 4, 2, 3, 0, 1, 2]])
probability = 1 / (1 + np.exp(-model(rnnlab.one_hot(test, 5))[0, :, 0]))
print(np.round(probability, 2))
assert probability[:2].max() < 0.5 < probability[2:].min()

# %% [markdown]
# Before the 4 arrives the network says no; from the step it arrives on, it says yes and keeps
# saying it, with 31 parameters. The next tutorial derives how `fit` found them: backpropagation
# through time.
