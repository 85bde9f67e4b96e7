# %% [markdown]
# # 7. Next-word prediction and text generation
#
# A language model gives the probability of the next token given the ones before,
# $P(w_{t+1} \mid w_1, \dots, w_t)$. A recurrent network reads $w_1, \dots, w_t$ into its state
# $h_t$ and the output layer turns the state into a softmax over the vocabulary:
# $P(w_{t+1} = k \mid w_{\le t}) = \operatorname{softmax}(V h_t + c)_k$. Training is many-to-many:
# at every step the target is the next word, and the loss is the cross-entropy summed over steps.
#
# The corpus here is small and written for the example, so the model can learn it in seconds.

# %%
import numpy as np

import rnnlab
from rnnlab.data.text import Vocabulary, word_tokenize
from rnnlab.generate.text import rank_next, sample

facts = {"an apple": "red", "a banana": "yellow", "the sky": "blue", "grass": "green", "snow": "white",
         "coal": "black", "an orange": "orange", "a lemon": "yellow", "the sea": "blue", "a cherry": "red"}
sentences = [f"the color of {thing} is {colour} ." for thing, colour in facts.items()]
sentences += [f"{thing} is {colour} ." for thing, colour in facts.items()]
print(len(sentences), "sentences, e.g.", sentences[0])

vocab = Vocabulary().fit(word_tokenize(s) for s in sentences)
print(len(vocab), "tokens:", " ".join(vocab.tokens))

# %% [markdown]
# Inputs are the sentences without their last word, targets the same sentences shifted by one;
# padding (id 0) is masked, so it neither feeds the state nor counts in the loss.

# %%
from rnnlab.data.text import pad_sequences

encoded = [vocab.encode(word_tokenize(s)) for s in sentences]
x, _ = pad_sequences([e[:-1] for e in encoded])
y, _ = pad_sequences([e[1:] for e in encoded])
V = len(vocab)
model = rnnlab.Sequential([rnnlab.Embedding(V, 32, mask_zero=True, seed=0),
                           rnnlab.LSTM(64, return_sequences=True, seed=1), rnnlab.Dense(V, seed=2)])
history = model.fit(x, y, loss=rnnlab.losses.SoftmaxCrossEntropy(ignore_index=0),
                    optimizer=rnnlab.optim.Adam(lr=0.01), epochs=150, batch_size=20, seed=0)
print(f"cross-entropy {history['loss'][0]:.3f} -> {history['loss'][-1]:.3f} nats per word")

# %% [markdown]
# ## The next word
#
# `rank_next` feeds a prefix and reads the softmax at its last step.

# %%
for prefix in ["the color of an apple is", "the color of the sky is", "snow is"]:
    ranked = rank_next(model, vocab, prefix, k=3)
    print(f"{prefix!r:30} ->", ", ".join(f"{w} {p:.2f}" for w, p in ranked))
assert rank_next(model, vocab, "the color of an apple is", k=1)[0][0] == "red"

# %% [markdown]
# ## Sampling: temperature, top-k, top-p
#
# Generation feeds each sampled word back in. The **temperature** $\tau$ divides the logits before
# the softmax, $p_k \propto \exp(z_k / \tau)$: below 1 it sharpens the distribution towards the
# most likely word, above 1 it flattens it. **Top-k** keeps only the $k$ most likely words;
# **top-p** (nucleus) keeps the smallest set whose probabilities sum to at least $p$.

# %%
from rnnlab.generate.sampling import next_token_probs

logits = np.array([2.0, 1.0, 0.5, 0.0, -1.0])
for kwargs in [{"temperature": 1.0}, {"temperature": 0.5}, {"temperature": 2.0}, {"top_k": 2}, {"top_p": 0.8}]:
    print(f"{str(kwargs):22}", np.round(next_token_probs(logits, **kwargs), 3))

# %%
for temperature in (0.5, 1.0, 1.5):
    text = sample(model, vocab, "the color of", length=8, temperature=temperature, stop=".", seed=1)
    print(f"temperature {temperature}: {text}")
print("greedy: the color of a cherry", sample(model, vocab, "the color of a cherry", length=4, greedy=True, stop="."))
