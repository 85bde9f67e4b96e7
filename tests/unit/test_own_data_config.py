"""The ``[data]`` keys of a user's own files for tagging and CSV forecasting (``rnnlab.lab.config``)."""

from __future__ import annotations

import pytest

from rnnlab.lab.config import ConfigError, load_config, parse_config, to_toml

TAGGING = '[data]\ntask = "tagging"\npath = "corpus.conll"\n'
CSV = '[data]\ntask = "forecasting"\npath = "s.csv"\ntarget = "y"\n'


def test_tagging_is_bidirectional_unless_told_otherwise():
    assert parse_config(TAGGING).model.bidirectional is True
    assert parse_config(TAGGING + "[model]\nbidirectional = false\n").model.bidirectional is False
    sentiment = parse_config('[data]\ntask = "sentiment"\ndataset = "mr"\n')
    assert sentiment.model.bidirectional is False


def test_columns_and_target_take_a_name_or_a_list_and_read_back():
    config = parse_config(CSV + 'columns = ["a", "y"]\n')
    assert config.data.target == ("y",) and config.data.columns == ("a", "y")
    assert parse_config(to_toml(config)) == config
    assert parse_config(CSV, ["data.target=[\"y\", \"z\"]"]).data.target == ("y", "z")
    for bad in ("[]", '["a", "a"]', "3", '["a", 2]'):
        with pytest.raises(ConfigError, match=r"\[data\] columns: expected a column name or a non-empty array"):
            parse_config(CSV + f"columns = {bad}\n")


@pytest.mark.parametrize("text, message", [
    ('[data]\ntask = "tagging"\n', "reads your own files; set path"),
    (TAGGING + 'dataset = "ptb"\n', "leave dataset out"),
    (TAGGING + 'train_path = "t.conll"\n', "either path .* or train_path"),
    ('[data]\ntask = "tagging"\nval_path = "v.conll"\n', "needs train_path"),
    ('[data]\ntask = "forecasting"\npath = "s.csv"\n', "needs target"),
    (CSV + 'missing = "zero"\n', r"missing: expected one of 'error', 'drop', 'interpolate'"),
    (CSV + 'format = "xlsx"\n', r"format: expected one of 'txt', 'csv'"),
    ('[data]\ntask = "forecasting"\ndataset = "monthly-sunspots"\ntarget = "y"\n', "target: does not apply"),
    (TAGGING + "lookback = 3\n", "lookback: does not apply to task 'tagging'"),
])
def test_own_file_keys_are_checked(text, message):
    with pytest.raises(ConfigError, match=message):
        parse_config(text)


def test_relative_paths_are_relative_to_the_config_file(tmp_path):
    folder = tmp_path / "configs"
    folder.mkdir()
    path = folder / "t.toml"
    path.write_text('[data]\ntask = "tagging"\ntrain_path = "../data/*.conll"\ntest_path = "/abs/test.conll"\n')
    data = load_config(path).data
    assert data.train_path == str(folder / "../data/*.conll") and data.test_path == "/abs/test.conll"
    assert load_config(path) == load_config(path)  # anchoring twice changes nothing
