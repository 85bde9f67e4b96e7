"""The machine, BLAS and thread settings a benchmark ran with, recorded next to its results."""

from __future__ import annotations

import os
import platform
import re

THREAD_VARS = ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS", "NUMBA_NUM_THREADS",
               "RNNLAB_KERNELS", "RNNLAB_NUM_THREADS")


def cpu_model() -> str:
    try:
        with open("/proc/cpuinfo") as fh:
            for line in fh:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "unknown"


def memory_total() -> int | None:
    try:
        with open("/proc/meminfo") as fh:
            for line in fh:
                if line.startswith("MemTotal:"):
                    return int(line.split()[1]) * 1024
    except OSError:
        pass
    return None


def load_average() -> list[float] | None:
    try:
        return [round(v, 2) for v in os.getloadavg()]
    except OSError:
        return None


def machine_info() -> dict:
    return {
        "cpu": cpu_model(),
        "logical_cpus": os.cpu_count(),
        "memory_bytes": memory_total(),
        "os": platform.platform(),
        "python": platform.python_version(),
        "thread_env": {k: os.environ.get(k) for k in THREAD_VARS},
        "load_average": load_average(),
    }


def _numpy_blas() -> dict:
    import numpy as np

    info = {"numpy": np.__version__}
    try:
        config = np.show_config(mode="dicts")
        blas = config.get("Build Dependencies", {}).get("blas", {})
        info["blas"] = {k: blas.get(k) for k in ("name", "version", "openblas configuration") if k in blas}
    except Exception as exc:  # noqa: BLE001 - older NumPy has no mode="dicts"
        info["blas"] = {"error": repr(exc)}
    try:
        from threadpoolctl import threadpool_info

        info["threadpools"] = [{k: p.get(k) for k in ("internal_api", "version", "num_threads", "threading_layer",
                                                       "architecture")} for p in threadpool_info()]
    except ImportError:
        info["threadpools"] = "threadpoolctl not installed"
    return info


def library_info(lib: str) -> dict:
    """What the worker process for ``lib`` computes with (called inside that process)."""
    info = _numpy_blas()
    if lib == "torch":
        import torch

        info.update({"torch": torch.__version__, "torch_threads": torch.get_num_threads(),
                     "torch_interop_threads": torch.get_num_interop_threads(),
                     "mkldnn": torch.backends.mkldnn.is_available(),
                     "torch_blas": re.findall(r"BLAS_INFO=(\w+)", torch.__config__.show()),
                     "torch_parallel": [line.strip() for line in torch.__config__.parallel_info().splitlines()
                                        if "OpenMP" in line or "MKL" in line or "backend" in line]})
    if lib.startswith("rnnlab"):
        import numpy as np

        import rnnlab

        info["rnnlab"] = rnnlab.__version__
        here = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))  # this checkout; no machine paths recorded
        source = os.path.abspath(rnnlab.__file__)
        info["rnnlab_source"] = "this tree" if source.startswith(here + os.sep) else "another tree (--baseline)"
        try:
            from rnnlab import kernels
        except ImportError:  # a --baseline tree from before rnnlab.kernels
            info["rnnlab_kernels"] = {"backend": "numpy (no rnnlab.kernels)"}
        else:
            info["rnnlab_kernels"] = {"backend": kernels.backend(),
                                      "float32": "numba" if kernels.fused(np.float32) is not None else "numpy"}
            if kernels.available():
                import numba

                info["rnnlab_kernels"]["numba"] = numba.__version__
    return info
