"""rnnlab: recurrent neural networks from first principles, in NumPy, with hand-written BPTT.

The public names are re-exported here. The package is layered, each layer importing only from the
layers below it (``docs/architecture.md``)::

    cli  ->  lab  ->  training  ->  generate  ->  data  ->  io  ->  nn  ->  optim  ->  (_validation, _files, _errors)
"""

from rnnlab import _startup

try:  # the `rnnlab` command imports all this before it runs: a Ctrl-C here is one line and 130 there
    from rnnlab import _moved, data, generate, io, onnx, optim
    from rnnlab._errors import RnnlabWarning, TrainingDiverged
    from rnnlab._version import __version__
    from rnnlab.io import ModelFileError, interop, load, save
    from rnnlab.nn import (
                           GRU,
                           LSTM,
                           Bidirectional,
                           Dense,
                           Dropout,
                           Embedding,
                           GlobalAveragePool1D,
                           GlobalAveragePooling1D,
                           GlobalMaxPool1D,
                           GlobalMaxPooling1D,
                           GradcheckReport,
                           LockedDropout,
                           Module,
                           OneHot,
                           OneToMany,
                           Recurrent,
                           Seq2Seq,
                           Sequential,
                           SimpleRNN,
                           gradcheck,
                           initializers,
                           kernels,
                           losses,
                           one_hot,
                           stack,
    )
    from rnnlab.optim import schedules
    from rnnlab.training import TrainConfig, Trainer, callbacks, metrics

    _moved.install()
    from rnnlab import datasets, synthetic, text, timeseries, train  # noqa: E402  (the 0.1.0 paths, registered above)
except KeyboardInterrupt:
    _startup.interrupted_while_starting()
    raise


def __getattr__(name: str):
    """``rnnlab.recurrent``, ``rnnlab.models``, ...: the 0.1.0 module paths (see :mod:`rnnlab._moved`)."""
    return _moved.attribute(__name__, name)


__all__ = [
    "Bidirectional",
    "Dense",
    "Dropout",
    "Embedding",
    "GRU",
    "GlobalAveragePool1D",
    "GlobalAveragePooling1D",
    "GlobalMaxPool1D",
    "GlobalMaxPooling1D",
    "GradcheckReport",
    "LSTM",
    "LockedDropout",
    "Module",
    "ModelFileError",
    "OneHot",
    "OneToMany",
    "Recurrent",
    "RnnlabWarning",
    "Seq2Seq",
    "Sequential",
    "SimpleRNN",
    "TrainConfig",
    "Trainer",
    "TrainingDiverged",
    "__version__",
    "callbacks",
    "data",
    "datasets",
    "generate",
    "io",
    "nn",
    "gradcheck",
    "initializers",
    "interop",
    "kernels",
    "load",
    "losses",
    "metrics",
    "one_hot",
    "onnx",
    "optim",
    "save",
    "schedules",
    "stack",
    "synthetic",
    "text",
    "timeseries",
    "train",
    "training",
]
