"""Generation and prediction with trained models.

- Language models: :func:`sample` (text), :func:`generate_ids` (token ids), :func:`rank_next`
  (next-token prediction with ranked probabilities), built on :class:`Generator`, which carries
  the recurrent state so that each new token costs one time step (:mod:`~rnnlab.generate.generator`),
  and on the sampling rules of :mod:`~rnnlab.generate.sampling`.
- New raw inputs: :func:`predict_classes` / :func:`predict_proba` (text through the saved
  :class:`~rnnlab.text.Vocabulary`, :mod:`~rnnlab.generate.text`) and :func:`predict_values`
  (numbers through a fitted scaler), in :mod:`~rnnlab.generate.predict`.

A *language model* is a module that maps token ids (B, T) to next-token logits (B, T, V), e.g.
``Sequential([Embedding(V, E), LSTM(H, return_sequences=True), Dropout(0.2), LSTM(H,
return_sequences=True), Dense(V)])``; a model ending in a layer with ``return_sequences=False``
(logits (B, V) for the last step) works as well.
"""

from rnnlab.generate.generator import Generator, generate_ids, recurrent_layers
from rnnlab.generate.predict import predict_classes, predict_proba, predict_values
from rnnlab.generate.sampling import SamplingConfig, next_token_probs, sample_token
from rnnlab.generate.text import encode_texts, rank_next, sample

__all__ = [
    "SamplingConfig",
    "Generator",
    "recurrent_layers",
    "next_token_probs",
    "sample_token",
    "generate_ids",
    "sample",
    "rank_next",
    "encode_texts",
    "predict_proba",
    "predict_classes",
    "predict_values",
]
