# %% [markdown]
# # 11. Deploying with ONNX Runtime; exchanging with PyTorch and Keras
#
# A model trained in rnnlab leaves it in three ways: as an **ONNX** graph that ONNX Runtime serves
# (in a service, on a phone, in a browser), and as the equivalent **PyTorch** or **Keras 3** model
# with the same weights. The layers mean the same thing in all of them; only the weight layouts and
# gate orders differ (rnnlab and PyTorch order the LSTM gates $i, f, g, o$, ONNX $i, o, f, c$;
# Keras stores $U$ transposed as its `kernel`), and the converters reorder them.

# %%
import os
import tempfile
from pathlib import Path

import numpy as np

import rnnlab

work = Path(tempfile.mkdtemp())
rng = np.random.default_rng(0)
model = rnnlab.Sequential([rnnlab.Embedding(30, 8, mask_zero=True, seed=0),
                           rnnlab.Bidirectional(rnnlab.GRU(12, seed=1)), rnnlab.Dense(3, seed=2)])
ids = rng.integers(1, 30, size=(4, 9))
ids[2, 6:] = 0  # a shorter sentence, right-padded
logits = model(ids)
print(logits)

# %% [markdown]
# ## ONNX: export and serve
#
# The graph takes the batch-first ids, computes the padding's `sequence_lens` from `mask_zero`,
# and runs ONNX's own `GRU` operator in both directions.

# %%
import onnxruntime as ort

rnnlab.onnx.export(model, work / "classifier.onnx")
options = ort.SessionOptions()
options.log_severity_level = 3  # the optional state inputs are noted in a warning otherwise
session = ort.InferenceSession(str(work / "classifier.onnx"), options, providers=["CPUExecutionProvider"])
served = session.run(["y"], {"x": ids})[0]
print("largest difference from rnnlab:", float(np.abs(served - logits).max()))
np.testing.assert_allclose(served, logits, rtol=1e-5, atol=1e-5)

# %% [markdown]
# ## PyTorch
#
# `rnnlab.interop.to_torch` builds the equivalent `torch.nn` modules and copies the weights;
# `from_torch` goes the other way. A recurrent layer on its own:

# %%
import torch

lstm = rnnlab.LSTM(6, return_sequences=True, input_size=4, seed=3, dtype="float64")
x = rng.standard_normal((2, 5, 4))
torch_lstm = rnnlab.interop.to_torch(lstm)
with torch.no_grad():
    torch_out, _ = torch_lstm(torch.from_numpy(x))
print("largest difference from rnnlab:", float(np.abs(torch_out.numpy() - lstm(x)).max()))
np.testing.assert_allclose(torch_out.numpy(), lstm(x), rtol=1e-12, atol=1e-12)
back = rnnlab.interop.from_torch(torch_lstm)
np.testing.assert_array_equal(back.params["W"], lstm.params["W"])

# %% [markdown]
# ## Keras 3
#
# `to_keras` and `from_keras` convert whole models; `save_keras` and `load_keras` write and read
# `.keras` files with h5py alone, so a Keras model can come in on a machine without Keras.

# %%
os.environ.setdefault("KERAS_BACKEND", "torch")
import keras  # noqa: E402

keras_model = rnnlab.interop.to_keras(model)
keras_model.summary()
from_keras = keras.ops.convert_to_numpy(keras_model(ids))
print("largest difference from rnnlab:", float(np.abs(from_keras - logits).max()))
np.testing.assert_allclose(from_keras, logits, rtol=1e-5, atol=1e-5)

rnnlab.interop.save_keras(model, work / "classifier.keras")
reloaded = keras.saving.load_model(work / "classifier.keras")
np.testing.assert_allclose(keras.ops.convert_to_numpy(reloaded(ids)), logits, rtol=1e-5, atol=1e-5)
again = rnnlab.interop.load_keras(work / "classifier.keras")
np.testing.assert_allclose(again(ids), logits, rtol=1e-6, atol=1e-6)
print("rnnlab -> .keras -> Keras -> the same logits; .keras -> rnnlab -> the same logits")
