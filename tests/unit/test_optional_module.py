"""rnnlab._validation.optional_module: the one way rnnlab imports an optional package."""

import pytest


def test_optional_module_imports_or_says_what_needs_it_and_how_to_install_it():
    from rnnlab._validation import optional_module

    assert optional_module("json", "anything", "`pip install json`").dumps([1]) == "[1]"
    with pytest.raises(ImportError, match=r"rnnlab\.x needs no_such_pkg_xyz, an optional dependency of rnnlab; "
                                          r"install it with `pip install no-such`"):
        optional_module("no_such_pkg_xyz", "rnnlab.x", "`pip install no-such`")
