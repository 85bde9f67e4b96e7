"""rnnlab: recurrent neural networks from first principles, in NumPy, with hand-written BPTT."""

from rnnlab import (callbacks, data, datasets, generate, initializers, interop, kernels, losses, metrics, optim,
                    schedules, synthetic, text, timeseries, train)
from rnnlab.functional import one_hot
from rnnlab.gradcheck import GradcheckReport, gradcheck
from rnnlab.io import ModelFileError, load, save
from rnnlab.layers import Dense, Dropout, Embedding, OneHot
from rnnlab.models import OneToMany, Seq2Seq, Sequential, TrainingDiverged
from rnnlab.module import Module
from rnnlab.recurrent import GRU, LSTM, Bidirectional, Recurrent, SimpleRNN, stack
from rnnlab.train import TrainConfig, Trainer

__version__ = "0.1.0"

__all__ = [
    "Bidirectional",
    "Dense",
    "Dropout",
    "Embedding",
    "GRU",
    "GradcheckReport",
    "LSTM",
    "Module",
    "ModelFileError",
    "OneHot",
    "OneToMany",
    "Recurrent",
    "Seq2Seq",
    "Sequential",
    "SimpleRNN",
    "TrainConfig",
    "Trainer",
    "TrainingDiverged",
    "callbacks",
    "data",
    "datasets",
    "generate",
    "gradcheck",
    "initializers",
    "interop",
    "kernels",
    "load",
    "losses",
    "metrics",
    "one_hot",
    "optim",
    "save",
    "schedules",
    "stack",
    "synthetic",
    "text",
    "timeseries",
    "train",
]
