"""Modules and their maths: cells, recurrent layers, wrappers, layers, models, losses and gradient checks.

Everything here is NumPy with hand-written backward passes; nothing in ``rnnlab.nn`` imports from the
layers above it (optim, io, data, training, lab, cli).
"""

from rnnlab.nn.bidirectional import MERGE_MODES, Bidirectional
from rnnlab.nn.cells import Cell, ElmanCell, GRUCell, LSTMCell, Tape
from rnnlab.nn.functional import one_hot
from rnnlab.nn.gradcheck import GradcheckReport, gradcheck
from rnnlab.nn.layers import Dense, Dropout, Embedding, OneHot
from rnnlab.nn.module import Module
from rnnlab.nn.recurrent import GRU, LSTM, Recurrent, SimpleRNN
from rnnlab.nn.seq2seq import OneToMany, Seq2Seq
from rnnlab.nn.sequential import Sequential, stack

__all__ = [
    "MERGE_MODES", "Bidirectional", "Cell", "Dense", "Dropout", "ElmanCell", "Embedding", "GRU", "GRUCell",
    "GradcheckReport", "LSTM", "LSTMCell", "Module", "OneHot", "OneToMany", "Recurrent", "Seq2Seq", "Sequential",
    "SimpleRNN", "Tape", "gradcheck", "one_hot", "stack",
]
