"""The exceptions rnnlab raises for its own conditions, shared by every layer of the package."""

from __future__ import annotations


class TrainingDiverged(RuntimeError):
    """Raised when a loss or a gradient stops being finite; the weights are left at their last good values."""
