"""What the suite measures: shapes, cells and the case names shared by the orchestrator and the workers.

A case is a dict with a ``name`` and everything a worker needs to build it; the same case list goes
to every library, so the timings of one round pair up by name.
"""

from __future__ import annotations

#: (label, T, B, D, H, layers): the issue's four shapes; the last is PTB "small" (Zaremba et al. 2014).
SHAPES = [
    ("T100-B64-H128", 100, 64, 128, 128, 1),
    ("T100-B64-H256", 100, 64, 256, 256, 1),
    ("T100-B32-H512", 100, 32, 512, 512, 1),
    ("PTB-T35-B20-H200-L2", 35, 20, 200, 200, 2),
]
QUICK_SHAPES = [SHAPES[0], SHAPES[3]]
TINY_SHAPES = [("tiny-T5-B3-H8", 5, 3, 4, 8, 1)]

CELLS = ("lstm", "gru", "rnn")
MODES = ("train", "forward")

#: Generation: B=1, H=D=256, one step at a time for ``steps`` steps, the state carried.
GENERATION = {"B": 1, "D": 256, "H": 256, "steps": 1000}
TINY_GENERATION = {"B": 1, "D": 8, "H": 8, "steps": 20}


def timing_cases(shapes, cells=CELLS, modes=MODES, generation=GENERATION) -> list[dict]:
    """Every timed case: training step and forward for each cell and shape, then generation."""
    cases = []
    for label, T, B, D, H, L in shapes:
        for cell in cells:
            for mode in modes:
                cases.append({"name": f"{cell}/{mode}/{label}", "kind": mode, "cell": cell, "shape": label,
                              "T": T, "B": B, "D": D, "H": H, "L": L})
    if generation:
        for cell in ("lstm", "gru"):
            if cell in cells:
                cases.append({"name": f"{cell}/generate/B{generation['B']}-H{generation['H']}", "kind": "generate",
                              "cell": cell, "shape": f"B{generation['B']}-H{generation['H']}", "T": generation["steps"],
                              "B": generation["B"], "D": generation["D"], "H": generation["H"], "L": 1})
    return cases


def memory_cases(shapes, cells=CELLS) -> list[dict]:
    """One training step per cell and shape, each measured in a fresh process."""
    return [{"name": f"{cell}/train/{label}", "kind": "train", "cell": cell, "shape": label, "T": T, "B": B, "D": D,
             "H": H, "L": L} for label, T, B, D, H, L in shapes for cell in cells]
