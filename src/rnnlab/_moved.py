"""The module paths of rnnlab 0.1.0, kept importing after the move into subpackages.

rnnlab 0.1.0 had flat modules (``rnnlab.train``, ``rnnlab.recurrent``, ...). Each old path is registered
here as a small module that hands out the names of the modules that now hold its contents, so
``from rnnlab.recurrent import LSTM`` and ``rnnlab.train.Trainer`` keep working. The objects are the
same ones (``rnnlab.recurrent.LSTM is rnnlab.nn.LSTM``); new code imports from the new paths.
"""

from __future__ import annotations

import importlib
import sys
import types

# old path: the modules that hold its names now, searched in order
MOVED: dict[str, tuple[str, ...]] = {
    "rnnlab.callbacks": ("rnnlab.training.callbacks",),
    "rnnlab.cells": ("rnnlab.nn.cells",),
    "rnnlab.cells.base": ("rnnlab.nn.cells.base",),
    "rnnlab.cells.elman": ("rnnlab.nn.cells.elman",),
    "rnnlab.cells.gru": ("rnnlab.nn.cells.gru",),
    "rnnlab.cells.lstm": ("rnnlab.nn.cells.lstm",),
    "rnnlab.config": ("rnnlab.lab.config",),
    "rnnlab.datasets": ("rnnlab.data.datasets",),
    "rnnlab.demo": ("rnnlab.lab.demo", "rnnlab.cli.demo"),
    "rnnlab.diagnostics": ("rnnlab.lab.diagnostics", "rnnlab.cli.diagnose"),
    "rnnlab.experiments": ("rnnlab.lab.experiments", "rnnlab.cli.experiment"),
    "rnnlab.functional": ("rnnlab.nn.functional",),
    "rnnlab.gradcheck": ("rnnlab.nn.gradcheck",),
    "rnnlab.initializers": ("rnnlab.nn.initializers",),
    "rnnlab.interop": ("rnnlab.io.interop",),
    "rnnlab.kernels": ("rnnlab.nn.kernels",),
    "rnnlab.layers": ("rnnlab.nn.layers",),
    "rnnlab.losses": ("rnnlab.nn.losses",),
    "rnnlab.metrics": ("rnnlab.training.metrics",),
    "rnnlab.models": ("rnnlab.nn.sequential", "rnnlab.nn.seq2seq", "rnnlab._errors"),
    "rnnlab.module": ("rnnlab.nn.module",),
    "rnnlab.recurrent": ("rnnlab.nn.recurrent", "rnnlab.nn.bidirectional", "rnnlab.nn.sequential",
                         "rnnlab._validation"),
    "rnnlab.schedules": ("rnnlab.optim.schedules",),
    "rnnlab.synthetic": ("rnnlab.data.synthetic",),
    "rnnlab.tasks": ("rnnlab.lab.tasks", "rnnlab.lab.runs"),
    "rnnlab.text": ("rnnlab.data.text",),
    "rnnlab.timeseries": ("rnnlab.data.timeseries",),
    "rnnlab.train": ("rnnlab.training",),
    "rnnlab.viewer": ("rnnlab.lab.viewer", "rnnlab.cli.inspect"),
}


class MovedModule(types.ModuleType):
    """An old module path: attribute look-ups go, in order, to the modules that hold its names now."""

    def __init__(self, name: str, targets: tuple[str, ...]):
        super().__init__(name, f"Moved in rnnlab 0.2: the names of this module now live in {', '.join(targets)}.")
        self.__targets = targets

    def __getattr__(self, attr: str):
        if attr.startswith("__") and attr != "__all__":
            raise AttributeError(attr)
        found = []
        for module in self.__modules():
            if attr == "__all__":
                found.extend(n for n in public_names(module) if n not in found)
            elif hasattr(module, attr):
                return getattr(module, attr)
        if attr == "__all__":
            return found
        raise AttributeError(
            f"module {self.__name__!r} (moved to {', '.join(self.__targets)}) has no attribute {attr!r}")

    def __dir__(self):
        return sorted(set(super().__dir__()) | set(self.__all__))

    def __modules(self):
        """The target modules, imported."""
        for target in self.__targets:
            yield importlib.import_module(target)


def public_names(module: types.ModuleType) -> list[str]:
    """The module's ``__all__``, or else the names it defines that do not start with an underscore (not the
    modules, classes and functions it imports)."""
    names = getattr(module, "__all__", None)
    if names is not None:
        return list(names)
    return [name for name, value in vars(module).items()
            if not name.startswith("_") and not isinstance(value, types.ModuleType)
            and type(value).__module__ != "__future__"  # from __future__ import annotations
            and not (isinstance(value, type | types.FunctionType) and value.__module__ != module.__name__)]


def install() -> None:
    """Register every old path in ``sys.modules`` (nothing is imported until a name is looked up)."""
    for name, targets in MOVED.items():
        if name not in sys.modules:
            sys.modules[name] = MovedModule(name, targets)


def attribute(package: str, name: str) -> MovedModule:
    """The old module ``package.name``, for the package's ``__getattr__``; AttributeError for any other name."""
    module = sys.modules.get(f"{package}.{name}")
    if isinstance(module, MovedModule):
        return module
    raise AttributeError(f"module {package!r} has no attribute {name!r}")
