"""Every public name of rnnlab 0.1.0 still imports from its 0.1.0 module path.

``tests/fixtures/public_names_0.1.0.json`` maps each public module of rnnlab 0.1.0 to its public names,
captured before the flat modules moved into subpackages. The old paths are served by
:mod:`rnnlab._moved`; the objects they hand out are the ones of the new modules.
"""

from __future__ import annotations

import importlib
import json
from pathlib import Path

import pytest

import rnnlab
from rnnlab import _moved

FIXTURE = Path(__file__).resolve().parents[1] / "fixtures" / "public_names_0.1.0.json"
PUBLIC: dict[str, list[str]] = json.loads(FIXTURE.read_text(encoding="utf-8"))

def _params():
    for module, names in sorted(PUBLIC.items()):
        for name in names:
            yield pytest.param(module, name, id=f"{module}:{name}")


def test_the_fixture_names_every_moved_module_and_every_target_imports():
    assert set(_moved.MOVED) <= set(PUBLIC)
    for targets in _moved.MOVED.values():
        for target in targets:
            importlib.import_module(target)
    assert len(PUBLIC) == 35


@pytest.mark.parametrize("module", sorted(PUBLIC))
def test_every_0_1_0_module_imports(module):
    assert importlib.import_module(module).__name__ == module


@pytest.mark.parametrize("module, name", list(_params()))
def test_every_0_1_0_name_is_an_attribute_of_its_module(module, name):
    getattr(importlib.import_module(module), name)


@pytest.mark.parametrize("module, name", list(_params()))
def test_every_0_1_0_name_imports_with_from(module, name):
    namespace: dict = {}
    exec(f"from {module} import {name}", namespace)
    assert namespace[name] is getattr(importlib.import_module(module), name)


def test_old_paths_hand_out_the_objects_of_the_new_modules():
    from rnnlab.nn.recurrent import recurrent_class
    from rnnlab.recurrent import GRU, LSTM

    assert LSTM is rnnlab.nn.LSTM and GRU is rnnlab.nn.GRU and recurrent_class("lstm") is LSTM
    assert rnnlab.train.Trainer is rnnlab.training.Trainer
    assert importlib.import_module("rnnlab.train").TrainConfig is rnnlab.training.TrainConfig
    assert importlib.import_module("rnnlab.models").Sequential is rnnlab.nn.Sequential
    assert importlib.import_module("rnnlab.cells.lstm").LSTMCell is importlib.import_module("rnnlab.nn.cells").LSTMCell
    assert importlib.import_module("rnnlab.interop").from_torch is rnnlab.io.interop.from_torch
    assert (importlib.import_module("rnnlab.diagnostics").run_cli
            is importlib.import_module("rnnlab.cli.diagnose").run_cli)
    assert rnnlab.recurrent is importlib.import_module("rnnlab.recurrent")


@pytest.mark.parametrize("module", sorted(_moved.MOVED))
def test_dir_and_all_of_a_moved_module_list_its_names(module):
    moved = importlib.import_module(module)
    assert isinstance(moved, _moved.MovedModule)
    listed = set(dir(moved))
    exported = set(moved.__all__)
    assert exported <= listed
    missing = set(PUBLIC[module]) - exported
    assert not missing, f"{module}.__all__ lacks {sorted(missing)}"
    assert set(PUBLIC[module]) <= listed


@pytest.mark.parametrize("module", ["rnnlab.recurrent", "rnnlab.train", "rnnlab.cells.gru", "rnnlab.demo",
                                    "rnnlab.viewer"])
def test_an_unknown_attribute_of_a_moved_module_names_the_module(module):
    moved = importlib.import_module(module)
    with pytest.raises(AttributeError, match=module.replace(".", r"\.")) as info:
        moved.no_such_name  # noqa: B018
    assert "no_such_name" in str(info.value)
    assert not hasattr(moved, "no_such_name")
    with pytest.raises(ImportError):
        exec(f"from {module} import no_such_name", {})


def test_an_unknown_attribute_of_the_package_names_it():
    with pytest.raises(AttributeError, match="'rnnlab'.*'no_such_module'"):
        rnnlab.no_such_module  # noqa: B018
