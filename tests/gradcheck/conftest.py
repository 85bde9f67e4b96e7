"""Fixtures of the finite-difference suite: a seeded generator, floating-point errors as exceptions, and
uninitialised memory made visible."""

import sys

import numpy as np
import pytest


@pytest.fixture
def rng() -> np.random.Generator:
    """A fresh, seeded generator per test, so every test is reproducible on its own."""
    return np.random.default_rng(20240607)


@pytest.fixture(autouse=True)
def _raise_on_floating_point_errors():
    """An overflow or invalid operation (0 * inf, inf - inf) fails the test instead of passing as NaN."""
    with np.errstate(all="raise"):
        yield


class _PoisonedNumpy:
    """NumPy, except that ``empty`` and ``empty_like`` return float arrays filled with NaN."""

    def __getattr__(self, name):
        return getattr(np, name)

    @staticmethod
    def _poisoned(array):
        if array.dtype.kind in "fc":
            array.fill(np.nan)
        return array

    def empty(self, *args, **kwargs):
        return self._poisoned(np.empty(*args, **kwargs))

    def empty_like(self, *args, **kwargs):
        return self._poisoned(np.empty_like(*args, **kwargs))


@pytest.fixture
def poison_uninitialised_memory(monkeypatch):
    """rnnlab's own ``np.empty``/``np.empty_like`` calls hand out NaN-filled float arrays during the test
    (opt in with ``pytestmark = pytest.mark.usefixtures("poison_uninitialised_memory")``).

    A buffer allocated with ``np.empty`` and read before it is written holds whatever the allocator
    recycled: often a harmless value, so such a bug passes or fails at random. Filled with NaN, any
    result that depends on it is NaN, and the check fails every time. Only the ``np`` name inside the
    ``rnnlab`` modules is replaced; NumPy itself is untouched.
    """
    poisoned = _PoisonedNumpy()
    for name, module in list(sys.modules.items()):
        if (name == "rnnlab" or name.startswith("rnnlab.")) and getattr(module, "np", None) is np:
            monkeypatch.setattr(module, "np", poisoned)
