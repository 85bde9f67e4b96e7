"""One-step recurrent cells; :mod:`rnnlab.recurrent` runs them through time."""

from rnnlab.nn.cells.base import Cell, Tape
from rnnlab.nn.cells.elman import ElmanCell
from rnnlab.nn.cells.gru import GRUCell
from rnnlab.nn.cells.lstm import LSTMCell

__all__ = ["Cell", "Tape", "ElmanCell", "LSTMCell", "GRUCell"]
