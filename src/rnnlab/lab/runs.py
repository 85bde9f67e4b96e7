"""Run directories: train a task into one, and read it back to evaluate, generate and predict.

Run directory
-------------
:func:`train` writes, besides the trainer's files (``train_config.json``, ``train.log``,
``history.json``/``.csv``, curves, ``checkpoint.json`` + ``checkpoints/``; see :mod:`rnnlab.training.trainer`)::

    config.toml     the resolved run configuration (``rnnlab train RUN/config.toml`` repeats the run)
    vocab.json      the vocabulary (text tasks)          scaler.json   the scaler (forecasting)
    model/          the final model (rnnlab.io.save)     metrics.json  final validation/test metrics

and, for tasks on the user's files (:mod:`rnnlab.lab.filetasks`): ``labels.json`` (the class names of
a classification), ``confusion-val.json``/``confusion-test.json`` (and ``.png``), ``tokenizer.json``
(a subword language model's BPE), ``data/`` (a language model's corpus encoded as token ids).

A cross-validation run holds one such directory per fold (``fold-01`` ...) and, at its top, the
configuration and ``metrics.json`` with every fold's accuracy, their mean and standard deviation.
:func:`evaluate`, :func:`generate`, :func:`predict` and :func:`predict_file` read a run directory back.
"""

from __future__ import annotations

import dataclasses
import json
import math
import warnings
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from rnnlab._errors import RnnlabWarning
from rnnlab._files import write_atomic
from rnnlab.data import readers, records
from rnnlab.data.sources import DatasetFormatError
from rnnlab.data.subword import SPACE
from rnnlab.data.text import (
    Vocabulary,
)
from rnnlab.data.timeseries import (
    Scaler,
)
from rnnlab.generate import predict_proba, predict_values, rank_next, sample
from rnnlab.io import files as model_io
from rnnlab.lab import filetasks, userdata
from rnnlab.lab.config import (
    ConfigError,
    RunConfig,
    load_config,
    to_toml,
)
from rnnlab.lab.tasks import (
    CONFIG_FILE,
    LABELS,
    METRICS_FILE,
    MODEL_DIR,
    SCALER_FILE,
    VOCAB_FILE,
    RunError,
    _last_step,
    build_task,
    tokenizer_of,
)
from rnnlab.nn.module import Module
from rnnlab.training import distributed as mpi
from rnnlab.training.checkpoint import RUN_MARKER, claim_run_dir, writing
from rnnlab.training.trainer import Trainer, latest_checkpoint

__all__ = ["train", "evaluate", "generate", "predict", "predict_file", "load_run", "LoadedRun"]


# =========================================================================== run directories
def _read_run_config(run_dir: Path) -> RunConfig:
    path = run_dir / CONFIG_FILE
    if not path.is_file():
        raise RunError(f"'{run_dir}' is not an rnnlab run directory (looked for '{path}')")
    try:
        return load_config(path)
    except ConfigError as exc:
        raise RunError(f"the run configuration '{path}' is unusable: {exc}") from None


def _write_json(path: Path, document: dict) -> None:
    write_atomic(path, (json.dumps(document, indent=2, allow_nan=False, default=_json_number) + "\n").encode("utf-8"))


def _json_number(value):
    if isinstance(value, np.generic):
        return value.item()
    raise TypeError(f"{type(value).__name__} is not JSON serialisable")


def _finite(document):
    """NaN and inf as None (JSON has neither)."""
    if isinstance(document, dict):
        return {k: _finite(v) for k, v in document.items()}
    if isinstance(document, float) and not math.isfinite(document):
        return None
    return document


#: [data] keys that change how the held-out parts are evaluated, not what is trained: free to change on resume
_EVALUATION_ONLY = frozenset({"eval_bptt"})


def _check_resumable(config: RunConfig, run_dir: Path) -> None:
    """On resume, the data and the model must be those of the run (the training section and
    :data:`_EVALUATION_ONLY` keys may change)."""
    saved = _read_run_config(run_dir)
    for section in ("data", "model"):
        before, now = getattr(saved, section).to_dict(), getattr(config, section).to_dict()
        changed = [f"{k}: {before.get(k)!r} -> {now.get(k)!r}" for k in dict.fromkeys([*before, *now])
                   if before.get(k) != now.get(k) and k not in _EVALUATION_ONLY]
        if changed:
            raise ConfigError(f"--resume: the [{section}] section differs from the run's ({run_dir / CONFIG_FILE}): "
                              f"{'; '.join(changed)}. Only [train] may change when resuming")


def _load_artefacts(run_dir: Path) -> tuple[Vocabulary | None, Scaler | None]:
    vocab = scaler = None
    try:
        if (run_dir / VOCAB_FILE).is_file():
            vocab = Vocabulary.from_json((run_dir / VOCAB_FILE).read_text("utf-8"))
        if (run_dir / SCALER_FILE).is_file():
            scaler = Scaler.from_json((run_dir / SCALER_FILE).read_text("utf-8"))
    except ValueError as exc:
        raise RunError(f"a saved vocabulary or scaler in '{run_dir}' is unusable: {exc}") from None
    return vocab, scaler


def train(config: RunConfig, run_dir, *, data_dir=None, resume: bool = False, distributed: bool | None = None) -> dict:
    """Train ``config`` in ``run_dir`` and return the final metrics (also in ``run_dir/metrics.json``).

    With ``resume``, continue the run from its latest checkpoint (the data and model sections must
    be unchanged; the training section may differ, e.g. more epochs or steps). Without it, a
    ``run_dir`` that already holds a checkpoint is refused, and so is one that exists, is not empty
    and is not an rnnlab run (``FileExistsError``; see
    :func:`~rnnlab.training.checkpoint.claim_run_dir`). A diverged run raises
    :class:`~rnnlab.models.TrainingDiverged` and keeps its last good checkpoint.
    With ``data.cv_folds`` and no ``data.fold``, every fold is trained in ``run_dir/fold-NN``.

    Under an MPI launcher (``mpiexec -n N``), or with ``distributed=True``, the run is data-parallel
    over the ranks (:mod:`rnnlab.training.distributed`), and cross-validation folds are dealt out to
    the ranks instead; ``distributed=False`` trains in this process alone.
    """
    run_dir = Path(run_dir)
    comm = None if distributed is False else _world(bool(distributed))
    if config.data.cv_folds is not None and config.data.fold is None:
        return _cross_validate(config, run_dir, data_dir=data_dir, resume=resume, comm=comm)
    vocab = scaler = None
    saved: dict = {}
    if resume:
        if latest_checkpoint(run_dir) is None:
            raise RunError(f"nothing to resume: '{run_dir}' holds no checkpoint (looked for "
                           f"'{run_dir / 'checkpoint.json'}'); start the run without --resume")
        _check_resumable(config, run_dir)
        vocab, scaler = _load_artefacts(run_dir)
        saved = filetasks.load_saved(run_dir)
    elif latest_checkpoint(run_dir) is not None:
        raise RunError(f"'{run_dir}' already holds a training run; pass --resume to continue it, or choose another "
                       "--run-dir")
    root = comm is None or comm.is_root  # only rank 0 writes the run directory
    with mpi.abort_on_error(comm):
        if root:
            created = not run_dir.exists()
            claim_run_dir(run_dir)  # a directory of other files is refused: nothing of theirs is overwritten
        else:
            run_dir.mkdir(parents=True, exist_ok=True)
        try:  # a language model of the user's files encodes its corpus into the run directory here
            task = build_task(config, data_dir, vocab=vocab, scaler=scaler, run_dir=run_dir, saved=saved)
        except BaseException:
            if root and created:
                _unclaim(run_dir)  # a failed build leaves no run directory behind
            raise
        with writing(run_dir, "the run's configuration"):
            if root:
                write_atomic(run_dir / CONFIG_FILE, to_toml(task.config, header=_HEADER).encode("utf-8"))
                task.save_artefacts(run_dir)
            trainer = task.trainer(run_dir)
            if comm is not None:
                _attach(trainer, comm)
            trainer.log("data: " + " ".join(task.description))
        trainer.run(resume=resume)
        metrics = _finite(task.final_metrics(trainer))
    if comm is not None:
        metrics["world_size"] = comm.size
    if root:
        with writing(run_dir, "the final model and metrics", "the latest checkpoint is kept: free space, then resume"):
            model_io.save(task.model, run_dir / MODEL_DIR)
            for split in ("val", "test"):
                if isinstance(metrics.get(split), dict) and "confusion_matrix" in metrics[split]:
                    filetasks.write_confusion(run_dir, split, metrics[split]["confusion_matrix"], log=trainer.log)
            _write_json(run_dir / METRICS_FILE, metrics)
            if task.finish is not None:
                task.finish(task.model, run_dir, trainer.log)
    return metrics


def rank() -> int:
    """This process's rank in an MPI launch (0 outside one): who reports a data-parallel run."""
    return mpi.launch_rank()


def _world(required: bool):
    try:
        return mpi.world(required)
    except (ImportError, ValueError) as exc:
        raise ConfigError(str(exc)) from None


def _attach(trainer, comm) -> None:
    """Make ``trainer`` data-parallel over ``comm`` and say so in the log."""
    try:
        mpi.attach(trainer, comm)
    except (TypeError, ValueError) as exc:
        raise ConfigError(f"data-parallel training over {comm.size} ranks: {exc}") from None
    trainer.log(f"data-parallel training: world_size {comm.size}; {mpi.limit_threads(comm)}")


def _unclaim(run_dir: Path) -> None:
    """Remove a run directory this call created and marked, when the mark (and empty folders) are all it holds."""
    marker = run_dir / RUN_MARKER
    leftovers = [p for p in run_dir.rglob("*") if p != marker and not p.is_dir()]
    if leftovers:
        return
    marker.unlink(missing_ok=True)
    for folder in sorted((p for p in run_dir.rglob("*") if p.is_dir()), key=lambda p: -len(p.parts)):
        folder.rmdir()
    run_dir.rmdir()


_HEADER = ("The resolved configuration of this run, written by `rnnlab train`.\n"
           "`rnnlab train <this file>` repeats the run.")


def _cross_validate(config: RunConfig, run_dir: Path, *, data_dir, resume: bool, comm=None) -> dict:
    k = config.data.cv_folds
    started = [d for d in sorted(run_dir.glob("fold-*")) if latest_checkpoint(d) is not None]
    resuming = resume and (run_dir / CONFIG_FILE).is_file()
    if resuming:
        _check_resumable(config, run_dir)
    elif not resume and started:
        raise RunError(f"'{run_dir}' already holds a cross-validation run ({', '.join(d.name for d in started)} "
                       "started); pass --resume to continue it, or choose another --run-dir")
    if comm is None or comm.is_root:
        claim_run_dir(run_dir, recognised=resuming)  # its config.toml read back: a run of rnnlab's
        with writing(run_dir, "the run's configuration"):
            write_atomic(run_dir / CONFIG_FILE, to_toml(config, header=_HEADER).encode("utf-8"))
    else:
        run_dir.mkdir(parents=True, exist_ok=True)
    folds = {}
    mine = list(range(1, k + 1)) if comm is None else mpi.split_work(list(range(1, k + 1)), comm.rank, comm.size)
    with mpi.abort_on_error(comm):  # the folds are independent: each rank trains its own, alone
        for fold in mine:
            fold_dir = run_dir / f"fold-{fold:02d}"
            done = fold_dir / METRICS_FILE
            if resume and done.is_file():
                folds[fold] = json.loads(done.read_text("utf-8"))
                continue
            fold_config = dataclasses.replace(config, data=dataclasses.replace(config.data, fold=fold))
            folds[fold] = train(fold_config, fold_dir, data_dir=data_dir, distributed=False,
                                resume=resume and latest_checkpoint(fold_dir) is not None)
    if comm is not None:  # every fold's metrics.json is written: read the others' folds back
        comm.barrier(timed=False)  # a rank with fewer folds waits for the others' whole folds
        for fold in range(1, k + 1):
            if fold not in folds:
                folds[fold] = json.loads((run_dir / f"fold-{fold:02d}" / METRICS_FILE).read_text("utf-8"))
    folds = [folds[fold] for fold in range(1, k + 1)]
    accuracies = [f["test"]["accuracy"] for f in folds]
    summary = {"task": config.data.task, "dataset": config.data.dataset, "cv_folds": k,
               "fold_accuracy": accuracies, "accuracy_mean": float(np.mean(accuracies)),
               "accuracy_std": float(np.std(accuracies, ddof=1))}
    if any("val" in f for f in folds):  # none with val_frac = 0: each fold trains on all of its training part
        summary["fold_val_accuracy"] = [f.get("val", {}).get("accuracy") for f in folds]
    if comm is not None:
        summary["world_size"] = comm.size
    summary = _finite(summary)
    if comm is None or comm.is_root:
        _write_json(run_dir / METRICS_FILE, summary)
    return summary


@dataclass
class LoadedRun:
    """A trained run read back: its configuration, model, and vocabulary/scaler."""

    run_dir: Path
    config: RunConfig
    model: Module
    vocab: Vocabulary | None
    scaler: Scaler | None
    model_source: Path
    saved: dict = dataclasses.field(default_factory=dict)


def load_run(run_dir) -> LoadedRun:
    """Read ``run_dir``: the final model, or the latest checkpoint's for a run that has not finished."""
    run_dir = Path(run_dir)
    if not run_dir.is_dir():
        raise RunError(f"run directory '{run_dir}' " + ("is not a directory" if run_dir.exists() else "does not exist"))
    config = _read_run_config(run_dir)
    if config.data.cv_folds is not None and config.data.fold is None:
        raise RunError(f"'{run_dir}' is a {config.data.cv_folds}-fold cross-validation run: use one of its folds, "
                       f"e.g. '{run_dir / 'fold-01'}'")
    source = run_dir / MODEL_DIR
    if not (source / model_io.CONFIG_FILE).exists():  # not there yet: the run is still training
        checkpoint = latest_checkpoint(run_dir)
        if checkpoint is None:
            raise RunError(f"'{run_dir}' holds no model yet: no '{source}' and no checkpoint")
        source = checkpoint / "model"
    vocab, scaler = _load_artefacts(run_dir)
    _check_artefacts(run_dir, config, vocab, scaler)
    model = model_io.load(source)
    _warn_if_exploded(model, source)
    return LoadedRun(run_dir, config, model, vocab, scaler, source, filetasks.load_saved(run_dir))


#: a weight of larger magnitude marks a model whose training blew up (trained recurrent weights stay within tens)
EXPLODED_WEIGHT = 1e6


def _warn_if_exploded(model: Module, source: Path) -> None:
    """Warn (:class:`~rnnlab.RnnlabWarning`) when a weight is not finite or beyond :data:`EXPLODED_WEIGHT`:
    whatever is computed from such a model (a loss, a forecast, a gradient report) is meaningless."""
    for name, w in model.named_parameters():
        largest = float(np.max(np.abs(w), initial=0.0)) if np.isfinite(w).all() else math.inf
        if largest > EXPLODED_WEIGHT:
            bad = "NaN or inf" if largest == math.inf else f"|w| up to {largest:.3g}"
            warnings.warn(f"the weights of the model '{source}' have exploded (weight {name!r} holds {bad}, beyond "
                          f"{EXPLODED_WEIGHT:g}): its results are meaningless. Train it again with a lower learning "
                          "rate or gradient clipping", RnnlabWarning, stacklevel=3)
            return


def _check_artefacts(run_dir: Path, config: RunConfig, vocab, scaler) -> None:
    """A text run needs its vocabulary, a scaled forecasting run its scaler: name the missing file."""
    d = config.data
    if d.task in ("sentiment", "classification", "language_model", "tagging") and vocab is None:
        missing = VOCAB_FILE
    elif d.task == "forecasting" and not d.reads_files() and d.scaler != "none" and scaler is None:
        # (a forecaster of the user's own CSV keeps its input and target scalers in its own file)
        missing = SCALER_FILE
    else:
        return
    raise RunError(f"the {d.task} run '{run_dir}' lacks its {missing} (looked for '{run_dir / missing}'), which "
                   "rnnlab train writes beside the model; without it the model's inputs cannot be encoded as in "
                   "training. Restore the file or train the run again")


def _file_task(run: LoadedRun, option: str) -> filetasks.FileTask:
    task = run.config.data.task
    if task not in filetasks.FILE_TASKS or not run.config.data.reads_files():
        kinds = ", ".join(filetasks.FILE_TASKS)
        raise ConfigError(f"{option} works on runs trained on your own files (tasks {kinds}); '{run.run_dir}' is a "
                          f"{task} run" + ("" if run.config.data.reads_files() else " of a built-in data set"))
    return filetasks.FILE_TASKS[task]


def _other_files(run: LoadedRun, path, option: str) -> filetasks.DataFiles:
    """The files ``path`` names (relative to the current folder), in the run's ``format`` when it set one."""
    d = run.config.data
    other = dataclasses.replace(d, path=str(Path(path).absolute()), train_path=None, val_path=None, test_path=None,
                                val_frac=None, test_frac=None)
    try:
        return filetasks.data_files(other)
    except ConfigError as exc:
        raise ConfigError(f"{option}: {exc}") from None


def evaluate(run_dir, split: str | None = None, *, data_dir=None, path=None) -> dict:
    """Loss, metrics and the task's report of a run's model on ``split`` (default: test, else val), or on
    the file(s) ``path`` in the format of the training files (a run trained on the user's files)."""
    run = load_run(run_dir)
    if path is not None:
        if split is not None:
            raise ConfigError("evaluate: give either --split or --path, not both")
        hooks = _file_task(run, "--path")
        batches, report = hooks.batches(run.config, run.model, run.vocab, run.saved, _other_files(run, path, "--path"))
        trainer = Trainer(run.model, hooks.loss, run.config.train, batches, batches, run.run_dir)  # writes nothing
        results = trainer.evaluate(batches)
        if report is not None:
            results.update(report(run.model))
        return {"run": str(run.run_dir), "model": str(run.model_source), "path": str(path), **_finite(results)}
    task = build_task(run.config, data_dir, vocab=run.vocab, scaler=run.scaler, run_dir=run.run_dir, saved=run.saved)
    task.model = run.model
    parts = task.splits()
    split = split or ("test" if "test" in parts else "val")
    trainer = task.trainer(run.run_dir)
    return {"run": str(run.run_dir), "model": str(run.model_source), "split": split,
            **task.evaluate(split, trainer)}  # NaN and inf kept: they are printed, not written as JSON


#: how many unknown tokens a warning shows
_SHOWN_UNKNOWN = 5


def _warn_unknown(vocab: Vocabulary, token_lists: Sequence[Sequence[str]], what: str) -> None:
    """Warn (:class:`~rnnlab.RnnlabWarning`) when tokens of the input are not in the run's vocabulary and will be
    read as ``<unk>``: how many, and the first few distinct ones."""
    if vocab is None or vocab.unk_id is None:  # without <unk>, encoding names the token and fails
        return
    unknown = [t for tokens in token_lists for t in tokens if t not in vocab]
    if not unknown:
        return
    distinct = list(dict.fromkeys(unknown))
    shown = ", ".join(repr(t) for t in distinct[:_SHOWN_UNKNOWN]) + (", ..." if len(distinct) > _SHOWN_UNKNOWN else "")
    total = sum(len(tokens) for tokens in token_lists)
    warnings.warn(f"{what}: {len(unknown)} of {total} tokens are not in the run's vocabulary and are read as "
                  f"{vocab.tokens[vocab.unk_id]!r}: {shown}", RnnlabWarning, stacklevel=3)


def _library_call(function, *args, **kwargs):
    """Call a generation/prediction function; its argument errors are usage errors (exit code 2)."""
    try:
        return function(*args, **kwargs)
    except (TypeError, ValueError) as exc:
        raise ConfigError(str(exc)) from None


def generate(run_dir, prime: str, *, length: int = 200, temperature: float = 1.0, top_k: int | None = None,
             top_p: float | None = None, greedy: bool = False, seed: int | None = None, stop=None,
             include_stop: bool = True, on_text=None) -> str:
    """``prime`` followed by up to ``length`` tokens sampled from a language-model run, ending early
    after any of the ``stop`` strings (see :func:`rnnlab.generate.sample`).

    ``on_text``, when given, is called with the prime and then with each piece of the continuation as
    it is generated (the pieces concatenated are the returned text), for showing it as it goes; the
    prime comes with the first piece, once the options have been checked.
    Tokens of the prime outside the vocabulary are read as ``<unk>``, with a warning."""
    run = load_run(run_dir)
    if run.config.data.task != "language_model":
        raise RunError(f"'{run.run_dir}' is a run of task {run.config.data.task!r}; "
                       "generate needs a language_model run")
    tokenize, joiner = _text_tokenizer(run)
    subword = run.config.data.level == "subword"  # pieces joined as they are: "▁" marks a space
    if isinstance(prime, str):
        _warn_unknown(run.vocab, [tokenize(prime)], "the prime")
    pieces = 0

    def show(piece: str) -> None:
        nonlocal pieces
        if not pieces:
            on_text(prime)
        if subword:
            piece = piece.replace(SPACE, " ")
        on_text(piece if pieces else joiner + piece)  # the first piece follows the prime
        pieces += 1

    if on_text is not None and not callable(on_text):
        raise TypeError(f"on_text must be a callable or None, got {type(on_text).__name__}")
    text = _library_call(sample, run.model, run.vocab, prime, length=length, temperature=temperature, top_k=top_k,
                         top_p=top_p, greedy=greedy, seed=seed, stop=stop, include_stop=include_stop,
                         tokenizer=tokenize, joiner=joiner, on_text=None if on_text is None else show)
    if on_text is not None and not pieces:
        on_text(prime)
    if subword:
        return prime + text.replace(SPACE, " ")
    return prime + (joiner if text else "") + text


def _text_tokenizer(run: LoadedRun):
    """``(tokenize, joiner)`` of a text run: its BPE pieces for level = "subword", else :func:`tokenizer_of`."""
    if run.config.data.level == "subword":
        return filetasks.text_tokenizer(run.config.data, run.saved)[0], ""
    return tokenizer_of(run.config.data)


def predict(run_dir, inputs: Sequence[str], *, k: int = 10) -> tuple[list[str], list[tuple]]:
    """Predictions of a run's model for raw ``inputs``: ``(header, rows)``.

    * sentiment, classification: one row per text, ``(label, probability of that label, text)``;
    * forecasting: the inputs are numbers, the latest ``lookback`` of them (at least that many) form
      the window; one row per step ahead, ``(step, value)`` in the series' units;
    * language_model: the inputs are joined into one prefix; the ``k`` most probable next tokens,
      ``(token, probability)``.
    """
    run = load_run(run_dir)
    d = run.config.data
    if d.task in ("sentiment", "classification"):
        tokenize, _ = tokenizer_of(d)
        _warn_unknown(run.vocab, [tokenize(t) for t in inputs if isinstance(t, str)], "the input")
        classes = LABELS if d.task == "sentiment" else run.saved.get("labels")
        if classes is None:
            raise RunError(f"'{run.run_dir}' has no {filetasks.LABELS_FILE} (the class names)")
        proba = _library_call(predict_proba, run.model, run.vocab, list(inputs), tokenizer=tokenize, maxlen=d.maxlen)
        labels = proba.argmax(axis=1)
        return ["label", "probability", "text"], [(classes[c], float(p[c]), text)
                                                  for c, p, text in zip(labels, proba, inputs)]
    if d.task == "tagging" or (d.task == "forecasting" and d.reads_files()):
        raise ConfigError(f"a {d.task} run trained on files predicts from a file: rnnlab predict {run_dir} --file FILE")
    if d.task == "forecasting":
        try:
            values = np.array([float(v) for v in inputs])
        except ValueError:
            raise ConfigError(f"a forecasting run predicts from numbers; got {list(inputs)!r:.120}") from None
        if len(values) < d.lookback:
            raise ConfigError(f"a forecasting run needs the latest lookback = {d.lookback} finite values, "
                              f"oldest first; got {len(values)}")
        bad = np.flatnonzero(~np.isfinite(values))
        if len(bad):
            raise ConfigError(f"a forecasting run needs finite values; input {bad[0] + 1} of {len(values)} is "
                              f"{inputs[bad[0]]!r}" + (f" ({len(bad)} such values)" if len(bad) > 1 else ""))
        window = values[-d.lookback:][None, :, None]  # (1, L, 1)
        forecast = _last_step(_library_call(predict_values, run.model, window, scaler=run.scaler))[0]  # (H,)
        return ["step", "value"], [(f"t+{h + 1}", float(v)) for h, v in enumerate(forecast)]
    if d.task == "language_model":
        tokenize, joiner = _text_tokenizer(run)
        _warn_unknown(run.vocab, [tokenize(joiner.join(inputs))], "the prefix")
        ranked = _library_call(rank_next, run.model, run.vocab, joiner.join(inputs), k, tokenizer=tokenize)
        return ["token", "probability"], [(token, p) for token, p in ranked]
    raise RunError(f"predict reads raw text or numbers; a run of task {d.task!r} takes generated sequences "
                   "(use rnnlab evaluate for it)")


def predict_file(run_dir, path) -> tuple[list[str], list[tuple]]:
    """Predictions of a run trained on the user's files, or of a built-in sentiment run, for every input
    of the file(s) ``path``: ``(header, rows)``, one row per input (see :data:`rnnlab.lab.filetasks.FILE_TASKS`).

    * sentiment (the built-in sets): as classification below;

    * classification: one text per line of a ``.txt`` file, or the ``text_column`` of each row of a
      CSV/TSV/JSONL file; rows ``(label, probability, text)``;
    * language_model: one text per line (or ``text_column``); rows ``(perplexity, tokens, text)``: the
      line's perplexity read from a fresh state after an end-of-line token, all its tokens and its end
      predicted;
    * tagging: a ``.conll`` file (its token column) or a ``.txt`` file (one sentence per line); one
      row per token, ``(sentence, token, tag, probability)``;
    * forecasting from a CSV: a CSV with the input columns; one row per window of ``lookback`` rows,
      its last row's date (or line) and the forecast of each target for each step ahead.
    """
    run = load_run(run_dir)
    d = run.config.data
    if d.task == "sentiment" and not d.reads_files():  # a built-in sentiment run: the texts of any text file
        with userdata.data_errors():
            files = readers.resolve_paths(Path(path).absolute())
            fmt = readers.detect_format(files)
            if fmt == "conll":
                raise DatasetFormatError(f"{str(path)!r}: a sentiment run predicts texts, one per line of a .txt "
                                         "file or the 'text' column of a CSV/TSV/JSONL file, not a .conll file")
            texts = records.read_texts(files, fmt)
        return predict(run_dir, texts)
    hooks = _file_task(run, "--file")
    return hooks.predict(run.config, run.model, run.vocab, run.saved, _other_files(run, path, "--file"))
