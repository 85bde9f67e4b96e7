"""What the command-line test modules share: each test in its own working directory, and ``run``.

A module takes them with ``from cli_helpers import in_tmp_path, run``; the imported fixture is
autouse there (pytest collects fixtures from a module's names).
"""

from __future__ import annotations

import pytest

from rnnlab import cli


@pytest.fixture(autouse=True)
def in_tmp_path(tmp_path, monkeypatch):
    """Run the test in its own temporary directory: relative paths land there."""
    monkeypatch.chdir(tmp_path)


def run(capsys, *argv) -> tuple[int, str, str]:
    """``rnnlab *argv`` in-process: ``(exit code, stdout, stderr)``."""
    code = cli.main([str(a) for a in argv])
    out, err = capsys.readouterr()
    return code, out, err
