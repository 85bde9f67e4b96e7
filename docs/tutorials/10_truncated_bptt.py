# %% [markdown]
# # 10. Truncated BPTT: what the window can and cannot learn
#
# Full BPTT over a long stream (a book, a year of readings) is neither affordable nor needed for
# every update. **Truncated BPTT** cuts the stream into windows of $k$ steps. The state is carried
# from one window to the next, so the forward pass still sees the whole past; but the backward pass
# stops at the window's start: the gradient of the loss at step $t$ reaches back only to the first
# step of its window,
#
# $$\frac{\partial L_t}{\partial W} \approx \sum_{s = t_0}^{t} \frac{\partial L_t}{\partial h_s}\,\frac{\partial^{+} h_s}{\partial W},
# \qquad t_0 = \text{the first step of } t\text{'s window}.$$
#
# So a dependency from a cue at step $t - \ell$ to a target at step $t$ can only be *learned* when
# some window holds both, i.e. when the lag $\ell$ is at most $k - 1$; the carried state can still
# *use* information from further back once it has learned to keep it.
#
# `rnnlab experiment truncation` tests exactly this on a delayed-recall task: a symbol (the cue) is
# shown, and after $\ell$ steps a query asks for it back. The fast mode runs in seconds.

# %%
import json
import tempfile
from pathlib import Path

from IPython.display import Image, display

from rnnlab.lab import experiments

work = Path(tempfile.mkdtemp())
results = experiments.get("truncation").run(work, mode="fast", seed=0, progress=None)
for line in results["findings"]:
    print("-", line)

# %%
display(Image(filename=str(work / "truncation.png")))

# %% [markdown]
# The recall accuracy per lag: with windows of $k = 2$ the model learns lag 1 and nothing beyond;
# with $k = 6$ it learns longer lags, and no run ever learns a lag of $k$ or more. The same
# `Trainer` that runs truncated BPTT here runs it for the language models
# (`[data] bptt = 20` in `examples/ptb_small.toml`): the window is a trade between the memory and
# time of an update and the longest dependency the gradient can teach.

# %%
learned = results["longest_learned"]
print(json.dumps(learned))
assert all(int(lag) < int(k) for k, lag in learned.items() if lag is not None)
