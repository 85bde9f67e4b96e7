"""Every example in a docstring of rnnlab runs and prints what it shows (``doctest``), in every module.

The examples see NumPy as ``np`` and rnnlab's public names (``rnnlab.__all__``), as a user who wrote
``import numpy as np; from rnnlab import *`` would.
"""

from __future__ import annotations

import doctest
import importlib
import pkgutil

import numpy as np
import pytest

import rnnlab

MODULES = sorted(m.name for m in pkgutil.walk_packages(rnnlab.__path__, "rnnlab.") if not m.name.endswith("__main__"))
GLOBALS = {"np": np, "rnnlab": rnnlab, **{name: getattr(rnnlab, name) for name in rnnlab.__all__}}


def examples(module) -> list[doctest.DocTest]:
    return [test for test in doctest.DocTestFinder().find(module, extraglobs=GLOBALS) if test.examples]


@pytest.mark.parametrize("name", MODULES)
def test_the_docstring_examples_of_a_module_run(name):
    module = importlib.import_module(name)
    runner = doctest.DocTestRunner(optionflags=doctest.ELLIPSIS | doctest.NORMALIZE_WHITESPACE)
    for test in examples(module):
        runner.run(test)
    result = runner.summarize(verbose=False)
    assert result.failed == 0, f"{result.failed} of {result.attempted} examples of {name} failed (output above)"


def test_the_examples_are_found():
    """A module moved or re-exported must not make its examples invisible to the test above."""
    found = {name for name in MODULES if any(not all(ex.options.get(doctest.SKIP) for ex in t.examples)
                                             for t in examples(importlib.import_module(name)))}
    assert {"rnnlab.data.batches", "rnnlab.data.text", "rnnlab.data.timeseries", "rnnlab.nn.sequential"} <= found
