"""One-step recurrent cells; :mod:`rnnlab.recurrent` runs them through time."""

from rnnlab.cells.base import Cell, Tape
from rnnlab.cells.elman import ElmanCell
from rnnlab.cells.gru import GRUCell
from rnnlab.cells.lstm import LSTMCell

__all__ = ["Cell", "Tape", "ElmanCell", "LSTMCell", "GRUCell"]
