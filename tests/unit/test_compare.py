"""``rnnlab.lab.compare``: runs' histories side by side. The histories are written by the Trainer's own
HistoryWriter, so the tests read the files a run writes."""

from __future__ import annotations

import math

import pytest

from rnnlab.lab.compare import compare, load_history, plot, table
from rnnlab.lab.tasks import RunError
from rnnlab.training.callbacks import HistoryWriter


def write_run(path, **columns):
    n = len(next(iter(columns.values())))
    history = {"epoch": list(range(1, n + 1)), "step": [10 * (i + 1) for i in range(n)], **columns}
    path.mkdir(parents=True)
    HistoryWriter().write(path, history, plot=False)
    return path


@pytest.fixture
def runs(tmp_path):
    a = write_run(tmp_path / "with", loss=[3.0, 2.0, 1.5, 1.2], val_loss=[2.5, 1.8, 1.6, 1.7],
                  val_accuracy=[0.5, 0.7, 0.65, 0.6])
    b = write_run(tmp_path / "without", loss=[3.0, 1.9, 1.0], val_loss=[2.4, float("nan"), 2.2],
                  val_accuracy=[0.55, 0.6, 0.75])
    return a, b


def test_best_last_and_epochs_of_each_run(runs):
    first, second = compare(runs)
    assert first.metric == second.metric == "val_loss"  # every run has it: the default
    assert (first.label, first.epochs, first.best, first.best_epoch, first.last) == ("with", [1, 2, 3, 4], 1.6, 3,
                                                                                   1.7)
    # a NaN epoch (stored as null) is a gap, never the best
    assert second.values == [2.4, None, 2.2] and (second.best, second.best_epoch, second.last) == (2.2, 3, 2.2)


def test_accuracies_are_maximised(runs):
    first, second = compare(runs, "val_accuracy")
    assert (first.best, first.best_epoch) == (0.7, 2)
    assert (second.best, second.best_epoch) == (0.75, 3)


def test_the_default_is_the_training_loss_when_a_run_has_no_validation(runs, tmp_path):
    plain = write_run(tmp_path / "plain", loss=[4.0, 3.0])
    curves = compare([*runs, plain])
    assert [c.metric for c in curves] == ["loss"] * 3
    assert (curves[2].best, curves[2].best_epoch) == (3.0, 2)


def test_labels(runs, tmp_path):
    assert [c.label for c in compare(runs, labels=["A", "B"])] == ["A", "B"]
    twin = write_run(tmp_path / "other" / "with", loss=[1.0], val_loss=[1.0])
    assert [c.label for c in compare([runs[0], twin])] == [str(runs[0]), str(twin)]  # same names: the paths
    with pytest.raises(ValueError, match=r"labels must name each of the 2 runs, got \['A'\]"):
        compare(runs, labels=["A"])
    with pytest.raises(ValueError, match="run_dirs must be a non-empty list"):
        compare([])
    with pytest.raises(ValueError, match="run_dirs must be a non-empty list"):
        compare(str(runs[0]))


def test_a_metric_a_run_lacks_is_named_with_what_the_run_has(runs):
    with pytest.raises(ValueError, match=r"metric 'val_perplexity': the run '.*with' has no such column; its "
                                         r"history has step, loss, val_loss, val_accuracy"):
        compare(runs, "val_perplexity")


def test_a_cross_validation_run_stands_for_its_folds(runs, tmp_path):
    cv = tmp_path / "cv"
    for k, losses in ((2, [0.9, 0.7]), (1, [0.8, 0.6, 0.65]), (10, [0.5])):
        write_run(cv / f"fold-{k:02d}", loss=[1.0] * len(losses), val_loss=losses)
    (cv / "fold-notes").mkdir()  # not a fold
    curves = compare([runs[0], cv], labels=["single", "BiLSTM"])
    assert [c.label for c in curves] == ["single", "BiLSTM, fold 1", "BiLSTM, fold 2", "BiLSTM, fold 10"]
    assert [c.run_dir for c in curves[1:]] == [cv / "fold-01", cv / "fold-02", cv / "fold-10"]
    assert [(c.best, c.best_epoch) for c in curves[1:]] == [(0.6, 2), (0.7, 2), (0.5, 1)]
    assert [c.label for c in compare([cv])][:1] == ["cv, fold 1"]
    (cv / "fold-03").mkdir()  # a fold whose first epoch has not ended
    with pytest.raises(RunError, match="fold-03' holds no history.json"):
        compare([cv])


def test_what_is_not_a_run(tmp_path):
    with pytest.raises(RunError, match="is not a directory"):
        load_history(tmp_path / "missing")
    (tmp_path / "empty").mkdir()
    with pytest.raises(RunError, match="holds no history.json"):
        load_history(tmp_path / "empty")
    (tmp_path / "cv" / "fold-01").mkdir(parents=True)
    with pytest.raises(RunError, match="is a cross-validation run: compare its folds"):
        load_history(tmp_path / "cv")
    for text in ("{", "[1, 2]", '{"loss": [1]}', '{"epoch": [1, 2], "loss": [1]}'):
        (tmp_path / "empty" / "history.json").write_text(text)
        with pytest.raises(RunError, match="history"):
            load_history(tmp_path / "empty")


def test_table(runs):
    lines = table(compare(runs, labels=["dropout", "none"])).splitlines()
    assert lines[0].split() == ["run", "epochs", "best", "val_loss", "at", "epoch", "last", "val_loss"]
    assert lines[1].split() == ["dropout", "4", "1.6", "3", "1.7"]
    assert lines[2].split() == ["none", "3", "2.2", "3", "2.2"]


def test_plot_draws_a_line_and_a_best_marker_per_run(runs):
    pytest.importorskip("matplotlib")
    curves = compare(runs)
    fig = plot(curves, title="ablation", log_scale=True)
    ax = fig.axes[0]
    lines = ax.get_lines()
    assert len(lines) == 4  # each run: its curve, then its best epoch
    assert list(lines[0].get_xdata()) == [1, 2, 3, 4] and list(lines[0].get_ydata()) == [2.5, 1.8, 1.6, 1.7]
    assert math.isnan(lines[2].get_ydata()[1])  # the gap
    assert (list(lines[1].get_xdata()), list(lines[1].get_ydata())) == ([3], [1.6])
    assert lines[1].get_color() == lines[0].get_color()
    assert [t.get_text() for t in ax.get_legend().get_texts()] == ["with", "without"]
    assert ax.get_title() == "ablation" and ax.get_yscale() == "log" and ax.get_ylabel() == "val_loss"
