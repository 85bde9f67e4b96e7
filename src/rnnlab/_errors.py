"""The exceptions rnnlab raises for its own conditions, shared by every layer of the package.

Callers catch them by type, never by the wording of a message.
"""

from __future__ import annotations


class NonFiniteError(ValueError):
    """An array that must be finite holds NaN or inf; ``name`` is the array (a parameter's dotted name, a
    loss) and ``index`` the first bad entry, when known."""

    def __init__(self, message: str, *, name: str | None = None, index: tuple[int, ...] | None = None):
        super().__init__(message)
        self.name = name
        self.index = index


class TrainingDiverged(RuntimeError):
    """Raised when a loss or a gradient stops being finite; the weights are left at their last good values."""


class RnnlabWarning(UserWarning):
    """Something rnnlab did that the caller may not expect, without failing: tokens read as ``<unk>``, a model
    whose weights have exploded. The command line prints each as one line on stderr."""


class TrainingStopped(KeyboardInterrupt):
    """A training run stopped on request (SIGTERM) after a step, with a checkpoint written there;
    ``signal_name`` is the signal, ``checkpoint`` the checkpoint's directory. A ``KeyboardInterrupt``,
    so code that handles Ctrl-C handles this too."""

    def __init__(self, message: str, *, signal_name: str, checkpoint=None):
        super().__init__(message)
        self.signal_name = signal_name
        self.checkpoint = checkpoint
