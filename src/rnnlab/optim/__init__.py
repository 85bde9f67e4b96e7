"""Optimizers (SGD, ASGD, Adam, AdamW, RMSprop, Adagrad), gradient clipping and learning-rate schedules.

The optimizers work on any object with ``named_parameters()`` and ``named_grads()``; this package imports
nothing from ``rnnlab.nn``.
"""

from rnnlab.optim.clipping import clip_grad_norm, clip_grad_value, global_norm
from rnnlab.optim.optimizers import ASGD, NAMES, SGD, Adagrad, Adam, AdamW, Optimizer, RMSprop, get

__all__ = ["Optimizer", "SGD", "ASGD", "Adam", "AdamW", "RMSprop", "Adagrad", "get", "NAMES", "clip_grad_norm",
           "clip_grad_value", "global_norm"]
