"""End to end: the example configurations trained by rnnlab and by plain PyTorch loops, and their GEMM floor.

``python -m benchmarks.e2e [--quick | --tiny] [--rounds N] [--examples ...] [--baseline SRC] [--out DIR]``

Per example (PTB small, the Tiny Shakespeare character model, the MR BiLSTM, sunspots), with the
method of ``benchmarks.run`` (one library per process, alternated rounds with a rotating order,
medians of per-round medians, paired ratios):

- ms per training step: rnnlab's trainer update, PyTorch's loop, the GEMM skeleton of the whole model;
- evaluation throughput on the validation part (tokens or samples per second);
- the wall time of a whole ``rnnlab train CONFIG --set train.max_steps=N`` against
  ``benchmarks.e2e.torch_train`` doing the same in PyTorch.

Modules: ``examples`` (what is measured), ``worker`` (one library's timings), ``torch_loop`` (the
PyTorch model and loops), ``torch_train`` (the PyTorch whole run), ``__main__`` (the rounds and the
table). See docs/performance.md, "End to end".
"""
