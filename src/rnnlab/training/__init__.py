"""Training: the trainer (full and truncated BPTT, resume), its callbacks and the metrics."""

from rnnlab._errors import TrainingDiverged
from rnnlab.training.trainer import TrainConfig, Trainer, latest_checkpoint

__all__ = ["TrainConfig", "Trainer", "TrainingDiverged", "latest_checkpoint"]
