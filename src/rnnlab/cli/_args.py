"""Option helpers shared by the commands: argparse types (:func:`int_at_least`, :func:`int_between`,
:func:`positive_float`, :func:`unit_float`) and :func:`add_data_dir`."""

from __future__ import annotations

import argparse
from collections.abc import Callable

from rnnlab.data.datasets import DATA_ENV

__all__ = ["int_at_least", "int_between", "positive_float", "unit_float", "add_data_dir"]


def int_at_least(minimum: int) -> Callable[[str], int]:
    """An argparse type: an integer ``>= minimum``."""
    what = "a positive integer" if minimum == 1 else f"an integer >= {minimum}"

    def parse(text: str) -> int:
        try:
            value = int(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"expected {what}, got {text!r}") from None
        if value < minimum:
            raise argparse.ArgumentTypeError(f"expected {what}, got {value}")
        return value
    return parse


def int_between(minimum: int, maximum: int) -> Callable[[str], int]:
    """An argparse type: an integer in ``[minimum, maximum]``."""
    what = f"an integer from {minimum} to {maximum:,}"

    def parse(text: str) -> int:
        try:
            value = int(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"expected {what}, got {text!r}") from None
        if not minimum <= value <= maximum:
            raise argparse.ArgumentTypeError(f"expected {what}, got {value:,}")
        return value
    return parse


def positive_float(text: str) -> float:
    """An argparse type: a number > 0."""
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a positive number, got {text!r}") from None
    if not value > 0:
        raise argparse.ArgumentTypeError(f"expected a positive number, got {text}")
    return value


def unit_float(text: str) -> float:
    """An argparse type: a number in (0, 1]."""
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a number in (0, 1], got {text!r}") from None
    if not 0 < value <= 1:
        raise argparse.ArgumentTypeError(f"expected a number in (0, 1], got {text}")
    return value


def add_data_dir(parser: argparse.ArgumentParser) -> None:
    """The ``--data-dir DIR`` option (default: ``$RNNLAB_DATA``)."""
    parser.add_argument("--data-dir", metavar="DIR", default=None,
                        help=f"data directory holding one folder per data set (default: ${DATA_ENV})")
