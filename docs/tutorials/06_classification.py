# %% [markdown]
# # 6. Sentiment and text classification on your own CSV
#
# Many-to-one: a recurrent encoder reads a text token by token, and its last state (or, for a
# bidirectional encoder, both directions' final states) goes through a softmax over the classes,
# $P(\text{class} = k \mid w_1, \dots, w_T) = \operatorname{softmax}(V h_T + c)_k$. Padding is masked,
# so a short text in a batch of long ones is read exactly as it would be alone.
#
# The data is the reader's own: a CSV file with a `text` and a `label` column (or TSV, JSON lines,
# or one folder of `.txt` files per class). Here we write one with three classes.

# %%
import csv
import json
import subprocess
import sys
import tempfile
from pathlib import Path

import numpy as np

work = Path(tempfile.mkdtemp())
rng = np.random.default_rng(0)
words = {"praise": ["wonderful", "excellent", "lovely", "great", "superb", "charming"],
         "complaint": ["awful", "broken", "terrible", "rude", "slow", "dirty"],
         "question": ["when", "how", "where", "which", "whether", "why"]}
fillers = ["the", "room", "staff", "service", "breakfast", "was", "is", "it", "our", "stay", "and", "very"]
rows = []
for label, cues in words.items():
    for _ in range(120):
        text = list(rng.choice(fillers, size=rng.integers(4, 12)))
        text.insert(int(rng.integers(0, len(text))), str(rng.choice(cues)))
        rows.append({"text": " ".join(text) + ("?" if label == "question" else "."), "label": label})
rng.shuffle(rows)
with open(work / "reviews.csv", "w", newline="", encoding="utf-8") as f:
    writer = csv.DictWriter(f, fieldnames=["text", "label"])
    writer.writeheader()
    writer.writerows(rows)
print(len(rows), "rows; for example:", rows[0], rows[1], sep="\n")

# %% [markdown]
# The run configuration names the file; the split is seeded and stratified by label.

# %%
(work / "reviews.toml").write_text("""
[data]
task = "classification"
path = "reviews.csv"
val_frac = 0.15
test_frac = 0.15
batch_size = 16
seed = 0

[model]
cell = "gru"
bidirectional = true
embedding_dim = 16
hidden_size = 24

[train]
epochs = 8
optimizer = "adam"
lr = 0.01
""")


def rnnlab(*args):
    done = subprocess.run([sys.executable, "-m", "rnnlab", *map(str, args)], capture_output=True, text=True,
                          timeout=600)
    assert done.returncode == 0, done.stderr
    return done.stdout


out = rnnlab("train", work / "reviews.toml", "--run-dir", work / "run")
print(out[-600:])

# %% [markdown]
# The run directory keeps the class names (`labels.json`), the metrics, and the confusion matrix of
# the test part (rows: the true class, columns: the predicted one).

# %%
metrics = json.loads((work / "run" / "metrics.json").read_text())
test = metrics["test"]
print({k: round(v, 3) for k, v in test.items() if isinstance(v, float)})
print(json.loads((work / "run" / "labels.json").read_text()))
confusion = test["confusion_matrix"]
print(confusion["labels"])
print(np.array(confusion["matrix"]))
assert test["accuracy"] > 0.9

# %% [markdown]
# New texts, from a file (one per line), with the predicted class and its probability:

# %%
(work / "new.txt").write_text("the breakfast was superb and the staff lovely.\n"
                              "when is breakfast served?\n"
                              "our room was dirty and the service slow.\n")
print(rnnlab("predict", work / "run", "--file", work / "new.txt"))
