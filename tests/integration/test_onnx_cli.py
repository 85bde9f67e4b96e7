"""``rnnlab export RUN`` on the example tasks: the exported char LM's next-character distribution and the
exported sentiment model's probabilities equal rnnlab's, in ONNX Runtime."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from cli_helpers import in_tmp_path, run  # noqa: F401  (in_tmp_path: an autouse fixture)

from rnnlab.generate.predict import predict_proba
from rnnlab.generate.text import encode_texts
from rnnlab.lab.runs import load_run
from rnnlab.lab.tasks import tokenizer_of

pytestmark = pytest.mark.onnx

ort = pytest.importorskip("onnxruntime")
pytest.importorskip("onnx")

CHAR_LM = ('[data]\ntask = "language_model"\ndataset = "tiny_shakespeare"\nlevel = "char"\nlimit = 3000\n'
           'batch_size = 4\nbptt = 16\n[model]\ncell = "lstm"\nhidden_size = 8\nnum_layers = 2\n'
           '[train]\nmax_steps = 2\n')
SENTIMENT = ('[data]\ntask = "sentiment"\ndataset = "uci_sentiment"\nlimit = 200\nbatch_size = 20\n'
             '[model]\ncell = "gru"\nbidirectional = true\nhidden_size = 4\nembedding_dim = 4\n'
             '[train]\nmax_steps = 2\n')


def session(path):
    options = ort.SessionOptions()
    options.log_severity_level = 3
    return ort.InferenceSession(str(path), options, providers=["CPUExecutionProvider"])


def train(capsys, data_dir, config: str, name: str) -> None:
    Path(f"{name}.toml").write_text(config, encoding="utf-8")
    code, _, err = run(capsys, "train", f"{name}.toml", "--run-dir", name, "--data-dir", data_dir)
    assert code == 0, err


def test_the_exported_char_lm_gives_rnnlab_next_character_distribution(capsys, data_dir):
    train(capsys, data_dir, CHAR_LM, "lm")
    code, out, err = run(capsys, "export", "lm")
    assert code == 0, err
    assert "wrote lm/model.onnx" in out and "head softmax" in out
    loaded = load_run("lm")
    tokenize, _ = tokenizer_of(loaded.config.data)
    ids = np.array([loaded.vocab.encode(tokenize(prime)) for prime in ("ROMEO: Wh", "JULIET: O")])  # (2, 9)
    logits = loaded.model(ids)[:, -1].astype(np.float64)  # (2, V)
    expected = np.exp(logits - logits.max(-1, keepdims=True))
    expected /= expected.sum(-1, keepdims=True)
    sess = session("lm/model.onnx")
    np.testing.assert_allclose(sess.run(["y"], {"x": ids})[0][:, -1], expected, rtol=1e-5, atol=1e-6)
    # one character at a time, the states carried from call to call: the same distribution
    names = [o.name for o in sess.get_outputs()]
    states: dict = {}
    for t in range(ids.shape[1]):
        got = dict(zip(names, sess.run(names, {"x": ids[:, t:t + 1], **states})))
        states = {k.replace("state_out", "state_in"): v for k, v in got.items() if k != "y"}
    np.testing.assert_allclose(got["y"][:, 0], expected, rtol=1e-5, atol=1e-6)
    assert run(capsys, "export", "lm")[0] == 1  # the file exists
    code, _, err = run(capsys, "export", "lm", "--force", "--head", "none", "--out", "logits.onnx")
    assert code == 0, err
    np.testing.assert_allclose(session("logits.onnx").run(["y"], {"x": ids})[0][:, -1], logits, rtol=1e-5, atol=1e-5)


def test_the_exported_sentiment_model_gives_rnnlab_probabilities(capsys, data_dir):
    train(capsys, data_dir, SENTIMENT, "sent")
    code, out, err = run(capsys, "export", "sent", "--out", "sent.onnx")
    assert code == 0, err
    loaded = load_run("sent")
    texts = ["What a great phone, it works", "Awful.", "not good at all"]
    tokenize, _ = tokenizer_of(loaded.config.data)
    ids, mask = encode_texts(loaded.vocab, texts, tokenizer=tokenize)  # right-padded
    assert not mask.all() and loaded.model.layers[0].mask_zero
    expected = predict_proba(loaded.model, loaded.vocab, texts, tokenizer=tokenize)  # (3, 2)
    got = session("sent.onnx").run(["y"], {"x": ids})[0]  # softmax over the two classes' logits
    np.testing.assert_allclose(got, expected, rtol=1e-5, atol=1e-6)


def test_export_errors_are_one_line_with_exit_code_1(capsys):
    code, _, err = run(capsys, "export", "no-such-run")
    assert code == 1 and "'no-such-run' does not exist" in err and "Traceback" not in err
