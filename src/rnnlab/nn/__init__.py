"""Modules and their maths: cells, recurrent layers, wrappers, layers, models, losses, gradient checks, the
explicit recurrent state of a model (:mod:`~rnnlab.nn.state`) and the training step (:mod:`~rnnlab.nn.step`).

Everything here is NumPy with hand-written backward passes; ``rnnlab.nn`` imports only from the core and
``rnnlab.optim`` (the training step's clipping and optimizers), never from the layers above it (io, data,
training, lab, cli).
"""

from rnnlab.nn.bidirectional import MERGE_MODES, Bidirectional
from rnnlab.nn.cells import Cell, ElmanCell, GRUCell, LSTMCell, Tape
from rnnlab.nn.functional import one_hot
from rnnlab.nn.grad_mode import grad_enabled, no_grad
from rnnlab.nn.gradcheck import GradcheckReport, gradcheck
from rnnlab.nn.layers import Dense, Dropout, Embedding, LockedDropout, OneHot
from rnnlab.nn.module import Module
from rnnlab.nn.pooling import GlobalAveragePool1D, GlobalAveragePooling1D, GlobalMaxPool1D, GlobalMaxPooling1D
from rnnlab.nn.recurrent import GRU, LSTM, Recurrent, SimpleRNN
from rnnlab.nn.seq2seq import OneToMany, Seq2Seq
from rnnlab.nn.sequential import Sequential, stack
from rnnlab.nn.state import final_states, forward_with_states
from rnnlab.nn.step import StepDiverged, StepResult, train_step

__all__ = [
    "MERGE_MODES", "Bidirectional", "Cell", "Dense", "Dropout", "ElmanCell", "Embedding", "GRU", "GRUCell",
    "GlobalAveragePool1D", "GlobalAveragePooling1D", "GlobalMaxPool1D",
    "GlobalMaxPooling1D", "GradcheckReport", "LSTM", "LSTMCell", "LockedDropout", "Module", "OneHot", "OneToMany",
    "Recurrent", "Seq2Seq",
    "Sequential",
    "SimpleRNN", "StepDiverged", "StepResult", "Tape", "final_states", "forward_with_states", "grad_enabled",
    "gradcheck", "no_grad", "one_hot", "stack", "train_step",
]
