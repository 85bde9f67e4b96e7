"""Training: the trainer (full and truncated BPTT, resume), its configuration, checkpoints, callbacks and metrics.

``config`` (TrainConfig), ``trainer`` (the Trainer's loop), ``bptt`` (truncated-BPTT windows and carried
state), ``checkpoint`` (the run directory, atomic checkpoints), ``divergence`` (an exploding loss, blown-up
weights), ``callbacks``, ``metrics``.
"""

from rnnlab._errors import TrainingDiverged
from rnnlab.training.checkpoint import CheckpointError, RunDirectoryError, latest_checkpoint
from rnnlab.training.config import TrainConfig
from rnnlab.training.trainer import Trainer

__all__ = ["CheckpointError", "RunDirectoryError", "TrainConfig", "Trainer", "TrainingDiverged", "latest_checkpoint"]
