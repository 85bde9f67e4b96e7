# %% [markdown]
# # 12. Training on several machines with MPI
#
# Synchronous data parallelism: $N$ processes (*ranks*) hold the same model. Each computes the
# gradient on its own share of the global batch; one `Allreduce` sums the shares; every rank then
# takes the same optimizer step. With $B$ examples in the global batch, $B_r$ on rank $r$ and
# $\ell_i$ the loss of example $i$,
#
# $$\nabla \frac{1}{B} \sum_{i=1}^{B} \ell_i = \frac{1}{B} \sum_{r=1}^{N} \Big( B_r \cdot \nabla \frac{1}{B_r} \sum_{i \in r} \ell_i \Big),$$
#
# so the result is exactly the single-process gradient, up to the order of the additions. rnnlab
# does this with mpi4py; `mpiexec -n N rnnlab train CONFIG` is all it takes, on one machine or a
# cluster. Here two ranks on this machine train the adding problem for a few steps, and a single
# process trains the same global batches; the weights must agree.

# %%
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

import numpy as np

import rnnlab

work = Path(tempfile.mkdtemp())
config = work / "adding.toml"
config.write_text("""
[data]
task = "adding"
seq_len = 30
n_train = 640
n_val = 64
n_test = 64
batch_size = 32
seed = 0

[model]
cell = "lstm"
hidden_size = 16
dtype = "float64"

[train]
epochs = 1
max_steps = 10
optimizer = "adam"
lr = 0.01
clip_norm = 1.0
metrics = ["mse"]
""")
mpiexec = shutil.which("mpiexec")
print("mpiexec:", mpiexec)


def train(run_dir, ranks=None):
    command = [sys.executable, "-m", "rnnlab", "train", str(config), "--run-dir", str(run_dir)]
    if ranks:
        command = [mpiexec, "-n", str(ranks), *command]
    done = subprocess.run(command, capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stderr[-2000:]
    return done.stdout


print(train(work / "two", ranks=2)[-400:])
train(work / "one")

# %%
two, one = rnnlab.load(work / "two" / "model"), rnnlab.load(work / "one" / "model")
gap = max(float(np.abs(two.params[k] - one.params[k]).max()) for k in one.params)
print(f"largest weight difference, 2 ranks against 1 process, after 10 Adam steps in float64: {gap:.1e}")
assert gap < 1e-10
print((work / "two" / "metrics.json").read_text()[:300])

# %% [markdown]
# The difference is rounding: the two ranks add their halves of the gradient in another order.
# The run directory records `world_size`; `--resume` works with the same number of ranks, another
# one, or a single process. On a cluster, the same command runs under the cluster's launcher
# (`srun`, or `mpiexec -f hostfile`), one rank per core by default; `docs/scaling.md` measures what
# the `Allreduce` costs and projects the speed-up of each example to more nodes.
