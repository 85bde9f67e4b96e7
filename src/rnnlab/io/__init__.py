"""Model files (a JSON config and an ``.npz`` of weights, written atomically, never pickle); interop with PyTorch
and Keras."""

from rnnlab.io.files import (
    CONFIG_FILE,
    FORMAT_VERSION,
    WEIGHTS_FILE,
    ModelFileError,
    load,
    read_config,
    save,
)

__all__ = ["CONFIG_FILE", "FORMAT_VERSION", "WEIGHTS_FILE", "ModelFileError", "load", "read_config", "save"]
