"""One-step recurrent cells; :mod:`rnnlab.nn.recurrent` runs them through time."""

from rnnlab.nn.cells.base import Cell, Path, Scratch, Tape
from rnnlab.nn.cells.elman import ElmanCell, ElmanScratch
from rnnlab.nn.cells.gru import GRUCell, GRUScratch
from rnnlab.nn.cells.lstm import LSTMCell, LSTMScratch

__all__ = ["Cell", "Path", "Scratch", "Tape", "ElmanCell", "ElmanScratch", "LSTMCell", "LSTMScratch", "GRUCell",
           "GRUScratch"]
