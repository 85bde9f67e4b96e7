"""Shared fixtures, and the CI guard: under CI the PyTorch reference tests, the ONNX tests and the
headless-browser tests must run, not skip."""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import pytest

# The README's command gives RNNLAB_DATA relative to the checkout (../shared/data); many tests run in
# their own temporary directory, and subprocesses (the CLI, mpiexec ranks, the tutorials' kernels)
# start elsewhere too: anchor it here, once, where pytest starts.
if os.environ.get("RNNLAB_DATA") and not os.path.isabs(os.environ["RNNLAB_DATA"]):
    os.environ["RNNLAB_DATA"] = os.path.abspath(os.environ["RNNLAB_DATA"])

# marker -> what a CI run must install so that its tests run
_GUARDED = {
    "reference": ("the PyTorch reference tests",
                  "install the test extra: pip install -e '.[test]', which pins torch==2.13.0"),
    "keras": ("the Keras 3 tests",
              "install the test extra: pip install -e '.[test]', which pins keras==3.15.1 and h5py"),
    "browser": ("the headless-browser tests", "install Debian's chromium package: apt-get install -y chromium"),
    "onnx": ("the ONNX export and import tests",
             "install the test extra: pip install -e '.[test]', which pins onnx and onnxruntime"),
}
_COUNTS = {marker: {"passed": 0, "skipped": 0, "failed": 0} for marker in _GUARDED}


def _ci() -> bool:
    return os.environ.get("CI", "").lower() not in ("", "0", "false", "no")


@pytest.fixture
def rng() -> np.random.Generator:
    """A seeded generator: every test draws the same numbers on every run."""
    return np.random.default_rng(1234)


@pytest.fixture(params=["numpy", "numba"])
def kernel_backend(request):
    """Runs the test once on each implementation of the time loops' elementwise work (rnnlab.kernels):
    the NumPy ufuncs and the numba kernels, the latter for float64 as well as float32. Under CI the
    numba run must happen (numba is in the test extra)."""
    from rnnlab.nn import kernels

    if request.param == "numba" and not kernels.available():
        if _ci():
            pytest.fail("CI requires the numba kernel tests: install the test extra (pip install -e '.[test]')")
        pytest.skip("numba is not installed (pip install rnnlab[fast])")
    with kernels.use(request.param):
        yield request.param


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
    for marker, counts in _COUNTS.items():
        if marker not in report.keywords:
            continue
        if report.skipped:
            counts["skipped"] += 1
        elif report.when == "call":
            counts["passed" if report.passed else "failed"] += 1


def pytest_sessionfinish(session, exitstatus):
    """Under CI, a run in which the reference, Keras, ONNX or browser tests were skipped or absent fails."""
    if not _ci() or session.config.option.collectonly or session.config.getoption("markexpr", ""):
        return
    for marker, (what, fix) in _GUARDED.items():
        counts = _COUNTS[marker]
        ran = counts["passed"] + counts["failed"]
        if counts["skipped"] or ran == 0:
            session.exitstatus = pytest.ExitCode.TESTS_FAILED
            reporter = session.config.pluginmanager.get_plugin("terminalreporter")
            message = f"CI requires {what}: {ran} ran, {counts['skipped']} skipped ({fix})"
            if reporter is not None:
                reporter.ensure_newline()
                reporter.write_line(message, red=True)
