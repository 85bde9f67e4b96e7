"""rnnlab's benchmark suite: rnnlab against PyTorch CPU and against the GEMM floor, one process per library.

Commands (from the repository root)::

    python -m benchmarks.run            # the full suite (about 15 minutes on 2 cores)
    python -m benchmarks.run --quick    # a few shapes, 3 rounds, for a first look
    python -m benchmarks.scaling        # time and memory against T and H; full vs truncated BPTT
    python -m benchmarks.e2e --quick    # the example configurations end to end, against PyTorch loops

See docs/performance.md for the method and the latest results.
"""
