"""Shared fixtures, and the CI guard: under CI the PyTorch reference tests must run, not skip."""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import pytest

_REFERENCE = {"passed": 0, "skipped": 0, "failed": 0}


def _ci() -> bool:
    return os.environ.get("CI", "").lower() not in ("", "0", "false", "no")


@pytest.fixture
def rng() -> np.random.Generator:
    """A seeded generator: every test draws the same numbers on every run."""
    return np.random.default_rng(1234)


@pytest.fixture(autouse=True)
def _raise_on_float_errors():
    """Overflow, division by zero and invalid operations fail the test instead of making NaN quietly."""
    with np.errstate(over="raise", divide="raise", invalid="raise", under="ignore"):
        yield


@pytest.fixture(scope="session")
def data_dir() -> Path:
    """The shared datasets: ``$RNNLAB_DATA`` or a ``shared/data`` folder beside a parent of this file."""
    env = os.environ.get("RNNLAB_DATA")
    if env:
        return Path(env).resolve()  # tests may chdir; a relative path must not follow them
    for parent in Path(__file__).resolve().parents:
        candidate = parent / "shared" / "data"
        if candidate.is_dir():
            return candidate
    pytest.skip("no data directory: set RNNLAB_DATA to the shared datasets folder")


def pytest_runtest_logreport(report):
    if "reference" not in report.keywords:
        return
    if report.skipped:
        _REFERENCE["skipped"] += 1
    elif report.when == "call":
        _REFERENCE["passed" if report.passed else "failed"] += 1


def pytest_sessionfinish(session, exitstatus):
    """Under CI, a run in which the PyTorch reference tests were skipped or absent fails."""
    if not _ci() or session.config.option.collectonly or session.config.getoption("markexpr", ""):
        return
    ran = _REFERENCE["passed"] + _REFERENCE["failed"]
    if _REFERENCE["skipped"] or ran == 0:
        session.exitstatus = pytest.ExitCode.TESTS_FAILED
        reporter = session.config.pluginmanager.get_plugin("terminalreporter")
        message = (f"CI requires the PyTorch reference tests: {ran} ran, {_REFERENCE['skipped']} skipped "
                   "(install the test extra: pip install -e '.[test]', which pins torch==2.13.0)")
        if reporter is not None:
            reporter.write_line(message, red=True)
