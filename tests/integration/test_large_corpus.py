"""A corpus larger than it is wise to hold in memory: a generated text file of over 200 MB trains a word-level
language model for a few steps in a subprocess whose peak resident memory (``VmHWM``) stays far below the file's
size, because the corpus is encoded once into token ids on disk and streamed from a memory map."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

#: the training command, then the process's own peak resident memory in kB
SCRIPT = """
import sys
from rnnlab.cli import main
code = main(["train", sys.argv[1], "--run-dir", sys.argv[2]])
status = open("/proc/self/status").read()
print("VmHWM", [line.split()[1] for line in status.splitlines() if line.startswith("VmHWM:")][0])
sys.exit(code)
"""


@pytest.mark.slow
@pytest.mark.skipif(not Path("/proc/self/status").is_file(), reason="reads VmHWM from /proc (Linux)")
def test_a_200_mb_corpus_trains_with_flat_memory(tmp_path):
    rng = np.random.default_rng(0)
    letters = np.array(list("abcdefghijklmnopqrstuvwxyz"))
    words = np.array(["".join(letters[rng.integers(0, 26, size=rng.integers(8, 15))]) for _ in range(3000)])
    lines = [" ".join(row) for row in words[rng.integers(0, len(words), size=(5000, 16))]]
    block = ("\n".join(lines) + "\n").encode("ascii")  # about 0.9 MB: 5000 lines of 16 words
    repeats = -(-210_000_000 // len(block))
    corpus = tmp_path / "big.txt"
    with open(corpus, "wb") as f:
        for _ in range(repeats):
            f.write(block)
    size = corpus.stat().st_size
    assert size >= 200_000_000
    (tmp_path / "small.txt").write_bytes(block[:20_000].rsplit(b"\n", 1)[0] + b"\n")
    (tmp_path / "big.toml").write_text("""
[data]
task = "language_model"
train_path = "big.txt"
val_path = "small.txt"
tokenizer = "whitespace"
batch_size = 4
bptt = 10

[model]
hidden_size = 8
embedding_dim = 8

[train]
epochs = 1
max_steps = 3
""", encoding="utf-8")
    # the NumPy kernels and optimizer updates: numba's compiler would add its own memory, the same for any corpus size
    env = {**os.environ, "RNNLAB_KERNELS": "numpy", "RNNLAB_FUSED_OPTIM": "0"}
    done = subprocess.run([sys.executable, "-c", SCRIPT, str(tmp_path / "big.toml"), str(tmp_path / "run")],
                          env=env, capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stderr
    peak = int(done.stdout.split("VmHWM")[-1].split()[0]) * 1024
    assert peak < size / 2, f"peak resident memory {peak:,} bytes for a {size:,}-byte corpus"
    manifest = json.loads((tmp_path / "run" / "data" / "tokens.json").read_text("utf-8"))
    assert manifest["tokens"]["train"] == repeats * 5000 * 17  # every word and each line's <eos>
    metrics = json.loads((tmp_path / "run" / "metrics.json").read_text("utf-8"))
    assert metrics["steps"] == 3 and metrics["val"]["perplexity"] > 1
