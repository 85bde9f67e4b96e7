# %% [markdown]
# # 9. Sequence to sequence, and one-to-many generation
#
# The four shapes of problem: **many-to-one** (a sentence to a sentiment), **many-to-many aligned**
# (a tag per word, the next word at every step), **one-to-many** (one input to a whole sequence:
# a caption from an image code) and **many-to-many unaligned**, sequence to sequence (a sentence to
# its translation, of another length). This tutorial builds the last two.
#
# ## An encoder-decoder that reverses digit strings
#
# The encoder reads the source $x_1, \dots, x_n$; its final state $(h_n, c_n)$ starts the decoder,
# which writes the target one token at a time, each step reading the token before
# ($\langle \text{start} \rangle$ first). In training the decoder reads the *true* previous token
# (teacher forcing), so all steps train in one pass; when generating it reads its own previous
# choice, until it writes $\langle \text{end} \rangle$.

# %%
import numpy as np

import rnnlab
from rnnlab.nn.seq2seq import OneToMany, Seq2Seq

PAD, START, END, DIGIT0 = 0, 1, 2, 3
VOCAB = DIGIT0 + 10


def make_batch(rng, batch, max_len=5):
    """Digit strings of 2 to 5 digits and their reversal followed by <end>, right-padded."""
    lengths = rng.integers(2, max_len + 1, size=batch)
    source = np.full((batch, max_len), PAD)
    target = np.full((batch, max_len + 1), PAD)
    for b, n in enumerate(lengths):
        digits = rng.integers(DIGIT0, VOCAB, size=n)
        source[b, :n], target[b, :n], target[b, n] = digits, digits[::-1], END
    return source, target


encoder = rnnlab.Sequential([rnnlab.Embedding(VOCAB, 16, mask_zero=True, seed=0),
                             rnnlab.LSTM(64, return_state=True, seed=1)])
decoder = rnnlab.Sequential([rnnlab.Embedding(VOCAB, 16, seed=2),
                             rnnlab.LSTM(64, return_sequences=True, return_state=True, seed=3)])
model = Seq2Seq(encoder, decoder, rnnlab.Dense(VOCAB, seed=4), start_id=START, end_id=END, pad_id=PAD)

rng = np.random.default_rng(0)
loss_fn, opt = rnnlab.losses.get("cross_entropy"), rnnlab.optim.Adam(lr=0.01)
for step in range(1, 801):
    source, target = make_batch(rng, 32)
    model.zero_grad()
    logits = model((source, target), training=True)  # teacher forcing: (B, T', V)
    loss = loss_fn(logits, target, mask=model.output_mask)
    model.backward(loss_fn.backward())
    rnnlab.optim.clip_grad_norm(model, 5.0)
    opt.step(model)
    if step % 200 == 0:
        print(f"step {step}: cross-entropy {loss:.3f}")

# %%
source, target = make_batch(np.random.default_rng(1), 200)
decoded = model.generate(source, max_len=target.shape[1])
padded = np.full(target.shape, PAD)
padded[:, :decoded.shape[1]] = decoded
exact = float(np.mean((padded == target).all(axis=1)))
for s, d in zip(source[:4], decoded[:4]):
    digits = [int(t) - DIGIT0 for t in s if t != PAD]
    out = [int(t) - DIGIT0 for t in d if t >= DIGIT0]
    print(digits, "->", out)
print(f"{exact:.0%} of 200 new strings reversed exactly")
assert exact > 0.5

# %% [markdown]
# ## One to many
#
# `OneToMany` writes a whole sequence from one input vector. With `input_mode="state"` the input
# sets the initial state through a learned bridge and, with `feedback=True`, each step reads the
# previous output token, as image-captioning models do. Here each of four noisy class codes must
# produce its own six-note "melody".

# %%
MELODIES = np.array([[0, 1, 2, 3, 4, 5], [5, 4, 3, 2, 1, 0], [7, 7, 0, 0, 7, 7], [2, 6, 2, 6, 3, 3]])


def melodies(rng, batch):
    labels = rng.integers(0, 4, size=batch)
    return np.eye(4)[labels] + 0.1 * rng.standard_normal((batch, 4)), MELODIES[labels]


writer = OneToMany(rnnlab.LSTM(32, return_sequences=True, return_state=True, seed=0), rnnlab.Dense(8, seed=1), 6,
                   input_mode="state", feedback=True, seed=2)
rng, opt = np.random.default_rng(0), rnnlab.optim.Adam(lr=0.01)
for step in range(300):
    x, notes = melodies(rng, 32)
    writer.zero_grad()
    loss_fn(writer((x, notes), training=True), notes)
    writer.backward(loss_fn.backward())
    opt.step(writer)
x, notes = melodies(np.random.default_rng(1), 200)
generated = writer.generate(x)
print("class 2 writes", generated[np.argmax(x, axis=1) == 2][0].tolist(), "target", MELODIES[2].tolist())
print(f"{np.mean((generated == notes).all(axis=1)):.0%} of 200 new inputs write their melody exactly")
