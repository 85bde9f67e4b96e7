"""Synchronous data-parallel training over MPI (mpi4py): every rank holds the same weights, trains on its
shard of each global batch, and takes the same optimizer step after one ``Allreduce`` of the gradients.

The scheme (Horovod's, without the framework)
---------------------------------------------
With N ranks, a global batch of B rows (the configuration's ``batch_size``) is cut into N contiguous
shards, rank r owning rows ``[r B // N, (r + 1) B // N)`` (:func:`shard_bounds`). For a language-model
stream these are the same rows in every window, so each rank owns a fixed set of the streams and the
carried state never moves between ranks. For a loss with ``reduction="mean"`` over the valid terms,
rank r's backward gives ``g_r = (1/n_r) sum_{u in r} dl_u`` with ``n_r`` its count of valid terms
(tokens, samples, masked steps). The gradient of the global batch is

    g = (1/n) sum_u dl_u = (sum_r n_r g_r) / sum_r n_r,

so each rank scales its gradient by ``n_r``, one ``Allreduce`` (sum) runs over a single flat buffer
``[n_r g_r, S_r, n_r]`` (``S_r`` the rank's summed loss terms), and every rank divides by the reduced
``n``: masks and uneven shards weigh as in one process. (``reduction="sum"``: the gradients and losses
just add up.) The parameters' gradients *are* views into that buffer (:class:`GradientBuffer`), so no
copy is made before or after the reduction. The finite checks, the clipping by the *global* norm and
the optimizer step then run on identical gradients on every rank, so the weights stay identical; they
start identical because rank 0's weights are broadcast once.

Evaluation runs on the shards too; loss sums, counts and the metrics' ``(total, count)`` are summed
with one small ``Allreduce`` per evaluation (and per epoch for the training metrics), so every rank
sees the same history and early stopping decides the same way everywhere.

Checkpoints
-----------
Rank 0 alone writes (the log, the history, curves, checkpoints and the run directory). A checkpoint
has exactly the single-process layout: the carried stream state of every row is gathered to rank 0
(rows in rank order are the global rows), and the metric accumulators are summed into rank 0's. A run
therefore resumes with the same or a different number of ranks, or in one process: each rank takes
its rows of the saved state again.

Failure
-------
A rank that raises while the others wait in a collective would leave them waiting for ever, so
:func:`abort_on_error` turns an exception on any rank into ``MPI_Abort`` of the whole job, after
printing which rank failed and why; a rank killed by a signal is noticed by the MPI launcher, which
ends the other ranks. A rank that hangs, or vanishes without the launcher noticing, is caught by a
watchdog: a rank waiting more than ``RNNLAB_MPI_TIMEOUT`` seconds (default 600, 0: no limit) inside
one collective of training says so and aborts the job. Checkpoints are written atomically (and the
others wait at a barrier while rank 0 writes), so the last complete one stays good.

Threads
-------
Each rank limits its BLAS threads to ``cores // ranks on this node`` (at least one; one rank per core
by default), through threadpoolctl when installed; ``OMP_NUM_THREADS`` set by the user wins.
"""

from __future__ import annotations

import json
import os
import sys
import threading
import time
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from dataclasses import replace

import numpy as np

__all__ = ["Communicator", "DataParallel", "GradientBuffer", "ShardedBatches", "abort_on_error", "attach",
           "launch_rank", "launched_by_mpi", "shard_bounds", "spread_over_ranks", "split_work", "world"]

#: Environment variables a launcher sets in each rank (MPICH/Hydra and Slurm's PMI, Open MPI, PMIx, MVAPICH).
LAUNCHER_VARIABLES = ("PMI_SIZE", "PMI_RANK", "OMPI_COMM_WORLD_SIZE", "PMIX_RANK", "MV2_COMM_WORLD_SIZE")

MPI_MISSING = ("data-parallel training needs mpi4py and an MPI library: pip install 'rnnlab[mpi]' "
               "(mpi4py and mpich), then launch with mpiexec -n N")


#: Seconds a rank may wait inside one collective of training before it aborts the job (0: no limit).
TIMEOUT_VARIABLE = "RNNLAB_MPI_TIMEOUT"
DEFAULT_TIMEOUT = 600.0
#: Seconds a rank that aborts the job waits first, so that the launcher forwards its last message
ABORT_GRACE = 0.5


def collective_timeout() -> float:
    """The watchdog's limit in seconds, from ``RNNLAB_MPI_TIMEOUT`` (default 600; 0 disables it)."""
    text = os.environ.get(TIMEOUT_VARIABLE, "").strip()
    if not text:
        return DEFAULT_TIMEOUT
    try:
        value = float(text)
    except ValueError:
        raise ValueError(f"{TIMEOUT_VARIABLE} must be a number of seconds (0: no limit), got {text!r}") from None
    if not value >= 0:
        raise ValueError(f"{TIMEOUT_VARIABLE} must be a number of seconds >= 0 (0: no limit), got {text!r}")
    return value


def launched_by_mpi() -> bool:
    """Whether this process looks like one rank of an MPI launch (a launcher's variables are set)."""
    return any(v in os.environ for v in LAUNCHER_VARIABLES)


def launch_rank() -> int:
    """This process's rank as the launcher set it (0 when not launched by MPI), without initialising MPI."""
    for name in ("PMI_RANK", "OMPI_COMM_WORLD_RANK", "PMIX_RANK", "MV2_COMM_WORLD_RANK"):
        value = os.environ.get(name, "")
        if value.isdigit():
            return int(value)
    return 0


def shard_bounds(n: int, rank: int, size: int) -> tuple[int, int]:
    """Rows ``[lo, hi)`` of ``n`` rows that rank ``rank`` of ``size`` owns: contiguous, in rank order,
    sizes differing by at most one (``lo = rank n // size``)."""
    return rank * n // size, (rank + 1) * n // size


def split_work(items: list, rank: int, size: int) -> list:
    """The items rank ``rank`` of ``size`` does when independent jobs are dealt out: every ``size``-th one."""
    return items[rank::size]


class Communicator:
    """A thin wrapper of an mpi4py communicator: the few collectives training needs, on NumPy buffers.

    Parameters
    ----------
    comm : mpi4py.MPI.Comm
    """

    def __init__(self, comm):
        from mpi4py import MPI  # lazily: mpi4py is the optional extra [mpi]

        self._MPI = MPI
        self.comm = comm
        self.rank = comm.Get_rank()
        self.size = comm.Get_size()
        self.timeout = collective_timeout()
        self._waiting_since: tuple[float, str] | None = None
        self._watchdog: threading.Thread | None = None

    @contextmanager
    def _waiting(self, what: str):
        """Run a collective under the watchdog: after ``timeout`` seconds inside it, abort the job."""
        if not self.timeout:
            yield
            return
        if self._watchdog is None:
            self._watchdog = threading.Thread(target=self._watch, name="rnnlab-mpi-watchdog", daemon=True)
            self._watchdog.start()
        self._waiting_since = (time.monotonic(), what)
        try:
            yield
        finally:
            self._waiting_since = None

    def _watch(self) -> None:
        while True:
            time.sleep(min(1.0, self.timeout / 4))
            waiting = self._waiting_since
            if waiting is not None and time.monotonic() - waiting[0] > self.timeout:
                print(f"rnnlab: rank {self.rank} of {self.size} waited more than {self.timeout:g} s in {waiting[1]}: "
                      f"another rank is stuck or gone; stopping all {self.size} ranks (set {TIMEOUT_VARIABLE} to "
                      "wait longer, 0 to wait for ever)", file=sys.stderr, flush=True)
                self.abort(1)

    @property
    def is_root(self) -> bool:
        return self.rank == 0

    def allreduce_(self, buffer: np.ndarray) -> np.ndarray:
        """Sum ``buffer`` (contiguous) over the ranks, in place; returns it."""
        with self._waiting("an Allreduce"):
            self.comm.Allreduce(self._MPI.IN_PLACE, buffer, op=self._MPI.SUM)
        return buffer

    def bcast_(self, array: np.ndarray, root: int = 0) -> np.ndarray:
        """Overwrite ``array`` (contiguous) with ``root``'s, in place; returns it."""
        with self._waiting("a Bcast"):
            self.comm.Bcast(array, root=root)
        return array

    def gather_rows(self, array: np.ndarray, root: int = 0) -> np.ndarray | None:
        """Concatenate every rank's ``array`` (same trailing shape) along axis 0, in rank order, at ``root``
        (None on the other ranks)."""
        array = np.ascontiguousarray(array)
        rows = np.array([array.shape[0]], dtype=np.int64)
        all_rows = np.empty(self.size, dtype=np.int64)
        with self._waiting("an Allgather"):
            self.comm.Allgather(rows, all_rows)
        row_size = int(np.prod(array.shape[1:], dtype=np.int64))
        counts = [int(r) * row_size for r in all_rows]
        out = None
        with self._waiting("a Gatherv"):
            if self.rank == root:
                out = np.empty((int(all_rows.sum()),) + array.shape[1:], dtype=array.dtype)
                self.comm.Gatherv(array, [out, counts], root=root)
            else:
                self.comm.Gatherv(array, None, root=root)
        return out

    def allgather_json(self, value) -> list:
        """Every rank's ``value`` (JSON-serialisable; NumPy numbers and arrays become lists and numbers), in
        rank order, on every rank; sent as UTF-8 JSON, never pickled."""
        data = np.frombuffer(json.dumps(value, default=_plain).encode("utf-8"), dtype=np.uint8)
        lengths = np.empty(self.size, dtype=np.int64)
        self.comm.Allgather(np.array([data.size], dtype=np.int64), lengths)
        out = np.empty(int(lengths.sum()), dtype=np.uint8)
        self.comm.Allgatherv(data, [out, [int(n) for n in lengths]])
        offsets = np.concatenate([[0], np.cumsum(lengths)])
        return [json.loads(out[offsets[r]:offsets[r + 1]].tobytes().decode("utf-8")) for r in range(self.size)]

    def barrier(self, timed: bool = True) -> None:
        """Wait for every rank (``timed=False``: without the watchdog, for ranks finishing independent jobs)."""
        if not timed:
            self.comm.Barrier()
            return
        with self._waiting("a Barrier"):
            self.comm.Barrier()

    def local_size(self) -> int:
        """The number of ranks on this node (sharing memory with this one)."""
        local = self.comm.Split_type(self._MPI.COMM_TYPE_SHARED)
        try:
            return local.Get_size()
        finally:
            local.Free()

    def abort(self, code: int = 1) -> None:
        """End every rank with exit code ``code``, after :data:`ABORT_GRACE` seconds in which the launcher
        forwards what this rank has just written (an abort can otherwise overtake the message saying why)."""
        sys.stdout.flush()
        sys.stderr.flush()
        time.sleep(ABORT_GRACE)
        self.comm.Abort(code)


def world(required: bool = False) -> Communicator | None:
    """The MPI world when this process is one of several ranks (or ``required``), None otherwise.

    Without ``required``, a process not started by an MPI launcher, or one where mpi4py is missing,
    gets None (plain single-process training); a launch of one rank gets None too. With ``required``
    (``rnnlab train --distributed``), a missing mpi4py is an ``ImportError`` saying what to install,
    and a single rank is a world of one.
    """
    if not required and not launched_by_mpi():
        return None
    try:
        from mpi4py import MPI
    except ImportError:
        if required:
            raise ImportError(MPI_MISSING) from None
        print(f"rnnlab: started by an MPI launcher, but mpi4py is missing, so this rank trains alone; "
              f"{MPI_MISSING}", file=sys.stderr)
        return None
    comm = Communicator(MPI.COMM_WORLD)
    return comm if required or comm.size > 1 else None


def _plain(value):
    if isinstance(value, np.ndarray):
        return value.tolist()
    if isinstance(value, np.generic):
        return value.item()
    raise TypeError(f"{type(value).__name__} is not JSON-serialisable")


def spread_over_ranks(fn, items: list, comm: Communicator | None) -> list:
    """``[fn(item) for item in items]`` with the items dealt out to the ranks (:func:`split_work`), for
    independent jobs (experiment runs): every rank gets every result, in the items' order. Without
    ``comm``, all run here. The results travel as JSON (tuples become lists, NumPy values plain ones).
    """
    if comm is None:
        return [fn(item) for item in items]
    with abort_on_error(comm):
        mine = [[i, fn(items[i])] for i in range(comm.rank, len(items), comm.size)]
    results = {int(i): result for part in comm.allgather_json(mine) for i, result in part}
    return [results[i] for i in range(len(items))]


@contextmanager
def abort_on_error(comm: Communicator | None):
    """Run the block; if it raises on a rank of a world of several, print the error with the rank and
    abort the whole job (the other ranks may be waiting in a collective that would never end)."""
    try:
        yield
    except BaseException as exc:
        if comm is None or comm.size == 1:
            raise
        print(f"rnnlab: rank {comm.rank} of {comm.size} failed ({type(exc).__name__}: {exc}); stopping all "
              f"{comm.size} ranks", file=sys.stderr, flush=True)
        comm.abort(2 if isinstance(exc, (ValueError, TypeError)) else 1)
        raise  # pragma: no cover - Abort does not return


def limit_threads(comm: Communicator) -> str:
    """Limit BLAS threads to ``cores // ranks on this node`` (at least 1) and return a line for the log."""
    if os.environ.get("OMP_NUM_THREADS"):
        return f"BLAS threads per rank: {os.environ['OMP_NUM_THREADS']} (OMP_NUM_THREADS)"
    cores = os.cpu_count() or 1
    local = comm.local_size()
    threads = max(1, cores // local)
    try:
        from threadpoolctl import threadpool_limits
    except ImportError:
        return (f"BLAS threads per rank: not limited (install threadpoolctl or set OMP_NUM_THREADS={threads}: "
                f"{cores} cores, {local} ranks on this node)")
    threadpool_limits(threads, user_api="blas")  # applied on construction, for the rest of the process
    return f"BLAS threads per rank: {threads} ({cores} cores, {local} ranks on this node)"


# --------------------------------------------------------------------------- batches
class ShardedBatches:
    """This rank's shard of every batch of ``batches`` (the ``Batches`` protocol): rows ``shard_bounds``.

    ``len``, the epochs' order and ``new_sequence`` are those of the global batches. A shard with no
    row is an error in training (every rank must take part in each step) and skipped in evaluation.
    """

    def __init__(self, batches, rank: int, size: int, *, training: bool):
        self.inner, self.rank, self.size, self.training = batches, rank, size, training
        self.epoch = getattr(batches, "epoch", 0)

    def __len__(self) -> int:
        return len(self.inner)

    def set_epoch(self, epoch: int) -> None:
        self.epoch = epoch

    def __iter__(self) -> Iterator:
        return self.batches_from(self.epoch, 0)

    def batches_from(self, epoch: int, start: int = 0) -> Iterator:
        for batch in self.inner.batches_from(epoch, start):
            n = int(np.shape(batch.x)[0])
            lo, hi = shard_bounds(n, self.rank, self.size)
            if lo == hi:
                if not self.training:
                    continue
                raise ValueError(f"a training batch of {n} rows cannot be shared by {self.size} ranks (each needs at "
                                 f"least one row); use a batch_size of at least {self.size} and a training set whose "
                                 "last batch is not smaller than the number of ranks")
            yield replace(batch, x=batch.x[lo:hi], y=batch.y[lo:hi],
                          mask=None if batch.mask is None else batch.mask[lo:hi])

    def __repr__(self) -> str:
        return f"ShardedBatches({self.inner!r}, rank={self.rank}, size={self.size})"


# --------------------------------------------------------------------------- gradients
class GradientBuffer:
    """One flat array whose leading part holds every gradient of ``model``: after :meth:`bind`, each
    ``model.grads[name]`` is a view of it (in ``named_grads`` order), so the whole gradient is reduced by
    a single call. ``extra`` trailing slots carry scalars (the loss sum and the count) in the same call.
    """

    def __init__(self, model, extra: int = 0):
        grads = list(model.named_grads())
        dtypes = {g.dtype for _, g in grads}
        if len(dtypes) > 1:
            raise TypeError(f"data-parallel training needs all parameters in one dtype, got {sorted(map(str, dtypes))}")
        self.dtype = dtypes.pop() if dtypes else np.dtype(np.float64)
        self.size = sum(g.size for _, g in grads)
        self.flat = np.zeros(self.size + extra, dtype=self.dtype)
        self.grads = self.flat[:self.size]
        self.extra = self.flat[self.size:]
        self.bind(model)

    def bind(self, model) -> None:
        """Make every gradient array of ``model`` a view into the buffer (keeping its current values)."""
        offset = 0
        for _, module in model.named_modules():
            own = module._grads  # the module's own gradients, not its children's
            for key, g in own.items():
                view = self.flat[offset:offset + g.size].reshape(g.shape)
                view[...] = g
                own[key] = view
                offset += g.size
        if offset != self.size:  # pragma: no cover - named_modules and named_grads walk the same tree
            raise RuntimeError("the model's gradients changed while binding them to the buffer")


class DataParallel:
    """What a :class:`~rnnlab.training.Trainer` calls when it trains on several ranks (``trainer.distributed``).

    Build it with :func:`attach`. It broadcasts rank 0's weights, binds the gradients to one flat
    buffer, and provides the trainer's hooks: :meth:`reduce_gradients` (inside ``train_step``, right
    after the backward pass), :meth:`step_stats`, :meth:`reduce_results`, :meth:`shard`,
    :meth:`gather_stream`, :meth:`scatter_stream` and :meth:`merge_metrics`.
    """

    def __init__(self, comm: Communicator, model):
        if not getattr(model, "built", True):
            raise ValueError("data-parallel training needs a built model (call it on data or build() it first)")
        self.comm = comm
        self.rank, self.world_size, self.is_root = comm.rank, comm.size, comm.is_root
        for _, p in model.named_parameters():
            comm.bcast_(p)
        self.buffer = GradientBuffer(model, extra=2)
        self.last_loss = self.last_count = None

    # ---------------------------------------------------------------- one step
    def reduce_gradients(self, model, loss) -> None:
        """Replace this rank's gradients by those of the global batch (one ``Allreduce``); see the module notes."""
        terms = getattr(loss, "terms", None)
        if terms is None:
            raise TypeError(f"data-parallel training needs an rnnlab Loss, which records its terms and their count; "
                            f"got {type(loss).__name__}")
        count, total = float(terms.count), float(terms.total)
        buf = self.buffer
        mean = getattr(loss, "reduction", "mean") == "mean"
        if mean and count != 1.0:
            buf.grads *= count
        buf.extra[0], buf.extra[1] = total, count
        with np.errstate(all="ignore"):  # a non-finite gradient is found on every rank by the step's checks
            self.comm.allreduce_(buf.flat)
            n = float(buf.extra[1])
            if mean and n != 1.0:
                buf.grads /= n if n else 1.0
        scale = {"mean": 1.0 / n if n else 0.0, "sum": 1.0, "half_sum": 0.5}.get(getattr(loss, "reduction", "mean"),
                                                                                  1.0)
        self.last_loss, self.last_count = float(buf.extra[0]) * scale, n

    def step_stats(self) -> dict:
        """The global batch's loss and its count of valid terms, for the epoch's running mean."""
        return {"loss": self.last_loss, "weight": self.last_count}

    # ---------------------------------------------------------------- data
    def shard(self, data, training: bool = False):
        """This rank's shard of ``data`` (unchanged when already sharded)."""
        if data is None or isinstance(data, ShardedBatches):
            return data
        return ShardedBatches(data, self.rank, self.world_size, training=training)

    # ---------------------------------------------------------------- results
    def reduce_results(self, loss_acc, metrics: Mapping) -> None:
        """Sum ``loss_acc = [total, weight]`` and every metric's ``total``/``count`` over the ranks, in place."""
        values = np.array([loss_acc[0], loss_acc[1]] + [v for m in metrics.values() for v in (m.total, m.count)],
                          dtype=np.float64)
        self.comm.allreduce_(values)
        loss_acc[0], loss_acc[1] = float(values[0]), float(values[1])
        for i, m in enumerate(metrics.values()):
            m.total, m.count = float(values[2 + 2 * i]), int(values[3 + 2 * i])

    def merge_metrics(self, metrics: Mapping) -> None:
        """Sum the metrics' accumulators into rank 0's and zero the others' (before a checkpoint: rank 0
        saves the whole epoch so far, and the sums over ranks are unchanged)."""
        self.reduce_results([0.0, 0.0], metrics)
        if not self.is_root:
            for m in metrics.values():
                m.total, m.count = 0.0, 0

    def root_writes(self, write, run_dir, *args):
        """``write(run_dir, *args)`` on rank 0 (a checkpoint), then a barrier, so no rank moves on before the
        checkpoint is complete on disk; returns the latest checkpoint's directory on every rank."""
        from rnnlab.training.checkpoint import latest_checkpoint

        path = write(run_dir, *args) if self.is_root else None
        self.comm.barrier()
        return path if path is not None else latest_checkpoint(run_dir)

    # ---------------------------------------------------------------- carried state
    def gather_stream(self, arrays: Mapping) -> dict:
        """Every rank's stream arrays (rows first) concatenated in rank order: the global rows, at rank 0
        (an empty dict elsewhere). Every rank holds the same keys, since all run the same windows."""
        out = {}
        for key in sorted(arrays):
            gathered = self.comm.gather_rows(np.asarray(arrays[key]))
            if gathered is not None:
                out[key] = gathered
        return out

    def scatter_stream(self, arrays: Mapping) -> dict:
        """This rank's rows of saved (global) stream arrays."""
        out = {}
        for key in arrays:
            a = np.asarray(arrays[key])
            lo, hi = shard_bounds(a.shape[0], self.rank, self.world_size)
            out[key] = a[lo:hi].copy()
        return out


def attach(trainer, comm: Communicator) -> DataParallel:
    """Make ``trainer`` train data-parallel over ``comm``: shard its batches, broadcast rank 0's weights,
    bind the gradients to one flat buffer, and keep the run directory's files to rank 0."""
    hook = DataParallel(comm, trainer.model)
    n = _shortest_batch(trainer.train)
    if n is not None and n < comm.size:
        raise ValueError(f"the training batches have as few as {n} rows, fewer than the {comm.size} ranks; each rank "
                         f"needs at least one row of every batch: raise batch_size or use fewer ranks")
    trainer.train = hook.shard(trainer.train, training=True)
    trainer.val = hook.shard(trainer.val)
    trainer.distributed = hook
    if not hook.is_root:  # progress bars, history files, curves and best.npz come from rank 0 alone
        from rnnlab.training.callbacks import BestWeights, HistoryWriter, ProgressLogger

        trainer.callbacks = [_best_weights_in_memory(cb) if type(cb) is BestWeights else cb
                             for cb in trainer.callbacks if not isinstance(cb, (HistoryWriter, ProgressLogger))]
    return hook


def _best_weights_in_memory(best):
    """A :class:`BestWeights` that keeps the best weights without writing ``best.npz`` (rank 0 writes it; a
    resumed rank reads it back from there)."""
    from rnnlab.optim.schedules import improved
    from rnnlab.training import callbacks

    class BestWeights(callbacks.BestWeights):  # the same name, so the same key among a checkpoint's callback states
        def on_epoch_end(self, trainer, epoch, logs):
            value = float(logs[self.monitor]) if self.monitor in logs else None
            if value is None or not improved(value, self.best, self.mode, self.min_delta):
                return super().on_epoch_end(trainer, epoch, logs) if value is None else None
            self.best, self.best_epoch = value, epoch + 1
            self.weights = {name: p.copy() for name, p in trainer.model.named_parameters()}

    copy = BestWeights(best.monitor, best.mode, best.min_delta)
    copy.best, copy.best_epoch, copy.weights = best.best, best.best_epoch, best.weights
    return copy


def _shortest_batch(batches) -> int | None:
    """The fewest rows of a batch of ``batches``, when it can be told without building them."""
    size = getattr(batches, "batch_size", None)
    x = getattr(batches, "x", None)
    if size is None:
        return None
    if x is None or getattr(batches, "drop_last", True):
        return int(size)
    rest = int(np.shape(x)[0]) % int(size)
    return int(size) if rest == 0 else min(int(size), rest)
