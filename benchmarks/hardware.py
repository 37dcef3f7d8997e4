"""What the benchmarks ran on, and the machine's physical limits, measured in the same run.

Shared by benchmarks/generate.py and benchmarks/train_throughput.py, which print
``describe(machine_info())`` before their results and put ``machine_info()`` in their JSON:

    from hardware import copy_bandwidth, machine_info, matmul_flops

``copy_bandwidth`` is a STREAM-like copy of a buffer far larger than the last-level
cache, so it is the DRAM bandwidth; a model whose weights fit in that cache can read
them faster than this, and then a fraction of the bandwidth limit above 1 is possible.
``matmul_flops`` is the fp32 rate of a large square matmul through numpy's or torch's
BLAS, the best the arithmetic units reach in practice. Both use the threads the benchmark was given.
"""

from __future__ import annotations

import importlib.metadata
import platform
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np


def cpu_model() -> str:
    """The CPU's model name from /proc/cpuinfo (Linux), else what ``platform`` knows."""
    cpuinfo = Path("/proc/cpuinfo")
    if cpuinfo.is_file():
        for line in cpuinfo.read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    return platform.processor() or platform.machine()


def last_level_cache_bytes() -> int | None:
    """Size of CPU 0's last-level cache (Linux sysfs), or None where it cannot be read."""
    caches = sorted(Path("/sys/devices/system/cpu/cpu0/cache").glob("index*/size"))
    if not caches:
        return None
    text = caches[-1].read_text().strip()  # e.g. "32768K"
    units = {"K": 1024, "M": 1024 ** 2, "G": 1024 ** 3}
    return int(text[:-1]) * units[text[-1]] if text[-1] in units else int(text)


def numpy_blas() -> str:
    """The BLAS numpy calls, as threadpoolctl finds it loaded: library, version, kernel."""
    from threadpoolctl import threadpool_info

    for pool in threadpool_info():
        if pool["user_api"] == "blas" and "numpy" in pool["filepath"]:
            return f"{pool['internal_api']} {pool.get('version')} ({pool.get('architecture', '?')})"
    return "unknown"


def versions() -> dict[str, str]:
    """Python and the libraries whose speed is measured (transformers where installed)."""
    found = {"python": platform.python_version()}
    for package in ("torch", "numpy", "transformers"):
        try:
            found[package] = importlib.metadata.version(package)
        except importlib.metadata.PackageNotFoundError:
            continue
    found["numpy_blas"] = numpy_blas()
    return found


def machine_info(threads: int) -> dict[str, object]:
    """CPU, cache, threads and library versions, for the printed results and the JSON."""
    return {"cpu": cpu_model(), "llc_bytes": last_level_cache_bytes(), "threads": threads,
            **versions()}


def describe(info: dict[str, object]) -> str:
    """One line of ``machine_info`` for the log."""
    llc = info["llc_bytes"]
    cache = f", {llc / 2 ** 20:.0f} MiB last-level cache" if isinstance(llc, int) else ""
    libraries = ", ".join(f"{k} {info[k]}" for k in ("python", "torch", "numpy", "transformers")
                          if k in info)
    return f"machine: {info['cpu']}{cache}, {info['threads']} threads; {libraries}; " \
           f"numpy BLAS {info['numpy_blas']}"


def copy_bandwidth(threads: int, megabytes: int = 512, repeats: int = 5) -> float:
    """Bytes/s of the best of ``repeats`` copies of a ``megabytes`` fp32 buffer.

    Like STREAM's Copy, a copy counts its bytes twice (read once, written once). The
    buffer is split into one slice per thread, each copied by ``np.copyto`` on its own
    thread (numpy lets go of the GIL while it copies): one core alone does not saturate
    the memory controller.
    """
    source = np.ones(megabytes * 2 ** 20 // 4, dtype=np.float32)
    target = np.zeros_like(source)
    pairs = list(zip(np.array_split(target, threads), np.array_split(source, threads), strict=True))
    best = float("inf")
    with ThreadPoolExecutor(threads) as pool:
        for _ in range(repeats):  # the first also faults the target's pages in
            start = time.perf_counter()
            list(pool.map(lambda pair: np.copyto(*pair), pairs))
            best = min(best, time.perf_counter() - start)
    return 2 * source.nbytes / best


def matmul_flops(size: int = 2048, repeats: int = 5, library: str = "numpy") -> float:
    """Floating-point operations/s of the best of ``repeats`` fp32 (size × size) matmuls.

    ``library`` "numpy" multiplies with numpy's BLAS (what the numpy decoder uses), "torch"
    with torch's (what training uses; the two BLAS differ), each under the thread limit the
    caller set (threadpoolctl, ``torch.set_num_threads``).
    """
    rng = np.random.default_rng(0)
    a = rng.standard_normal((size, size), dtype=np.float32)
    b = rng.standard_normal((size, size), dtype=np.float32)
    out = np.empty_like(a)
    if library == "torch":
        import torch

        a, b, out = torch.from_numpy(a), torch.from_numpy(b), torch.from_numpy(out)
        matmul = torch.matmul
    else:
        matmul = np.matmul
    best = float("inf")
    for _ in range(repeats):
        start = time.perf_counter()
        matmul(a, b, out=out)
        best = min(best, time.perf_counter() - start)
    return 2 * size ** 3 / best
