# %% [markdown]
# # 5. Bidirectional and stacked networks; padding and masks
#
# A **bidirectional** layer runs one recurrent layer forward in time and a second one backward,
# and combines their outputs at each step, so that the output at step $t$ has seen the whole
# sequence: $y_t = [\overrightarrow{h}_t ; \overleftarrow{h}_t]$ with the default
# `merge_mode="concat"`. A **stacked** network feeds the output sequence of one recurrent layer to
# the next; each layer sees the one below at every step.

# %%
import numpy as np

import rnnlab

model = rnnlab.Sequential([
    rnnlab.Embedding(50, 16, mask_zero=True, seed=0),
    rnnlab.Bidirectional(rnnlab.LSTM(24, return_sequences=True, seed=1)),
    rnnlab.LSTM(24, seed=2),
    rnnlab.Dense(3, seed=3),
])
model.summary(input_shape=(None, 7));

# %% [markdown]
# ## The backward direction is the forward layer on reversed time
#
# The backward half of a bidirectional layer equals a plain layer with `go_backwards=True` and
# the same weights; its outputs come back in the original time order.

# %%
rng = np.random.default_rng(0)
x = rng.standard_normal((2, 6, 4))
bi = rnnlab.Bidirectional(rnnlab.GRU(5, return_sequences=True, input_size=4, seed=0), merge_mode=None)
forward_out, backward_out = bi(x)
plain = rnnlab.GRU(5, return_sequences=True, input_size=4, seed=0)
plain(x)
plain.set_weights({k: v for k, v in bi.backward_layer.params.items()})
reversed_run = plain(x[:, ::-1])[:, ::-1]
np.testing.assert_allclose(backward_out, reversed_run, rtol=1e-5, atol=1e-6)
print("backward direction = the layer run on reversed time, outputs re-reversed")

# %% [markdown]
# ## Masks change nothing
#
# Sequences of different lengths share a batch by padding. The mask (from
# `Embedding(mask_zero=True)`, where id 0 is padding, or passed explicitly) tells every layer which
# steps are real: a padded step leaves the state as it was and its output is zero, and the
# gradient never flows through it. So a padded sequence gives exactly the result of the same
# sequence alone, whether the padding is on the right or on the left.

# %%
ids = np.array([[5, 9, 14, 2]])  # one real sequence, 4 tokens
right = np.array([[5, 9, 14, 2, 0, 0, 0]])  # padded on the right
left = np.array([[0, 0, 0, 5, 9, 14, 2]])  # padded on the left
alone, r, l = model(ids), model(right), model(left)
print(alone, r, l, sep="\n")
np.testing.assert_allclose(r, alone, rtol=1e-5, atol=1e-6)
np.testing.assert_allclose(l, alone, rtol=1e-5, atol=1e-6)

# %% [markdown]
# The bidirectional layer's backward direction starts at the last *real* step, not at the end of
# the padding; otherwise right padding would change its result. The gradients agree too:

# %%
loss = rnnlab.losses.get("cross_entropy")
grads = []
for batch in (ids, right, left):
    model.zero_grad()
    loss(model(batch), np.array([1]))
    model.backward(loss.backward(), input_grad=False)
    grads.append({k: v.copy() for k, v in model.grads.items()})
for name in grads[0]:
    np.testing.assert_allclose(grads[1][name], grads[0][name], rtol=1e-4, atol=1e-6)
    np.testing.assert_allclose(grads[2][name], grads[0][name], rtol=1e-4, atol=1e-6)
print(f"all {len(grads[0])} parameter gradients equal with and without padding")
