"""Device choice, precision and reproducibility switches: the same code on CPU and CUDA."""

from __future__ import annotations

import contextlib
import logging
import os
import random
import time
from collections.abc import Iterator

import numpy as np
import torch

from crest.cpu_allocator import keep_freed_memory
from crest.errors import ConfigError

log = logging.getLogger(__name__)

#: bf16 autocast on a CPU falls back to fp32 when one bf16 matmul takes more than this many times
#: an fp32 one: a CPU without bf16 units runs bf16 through conversions, over 20x slower, while one
#: with AVX512-BF16 or AMX runs it 1-5x faster (benchmarks/results/cpu_bf16.md)
CPU_BF16_MAX_SLOWDOWN = 2.0
#: ``CREST_CPU_BF16=force`` keeps bf16 on such a CPU (to study its numerics, not for speed)
FORCE_ENV = "CREST_CPU_BF16"

_measured: dict[str, float] = {}


def choose_device(name: str = "auto") -> torch.device:
    """``auto`` picks CUDA when available (the local rank's GPU under torchrun), else CPU."""
    if name == "auto":
        if torch.cuda.is_available():
            return torch.device("cuda", int(os.environ.get("LOCAL_RANK", "0")))
        name = "cpu"
    device = torch.device(name)
    if device.type == "cuda" and not torch.cuda.is_available():
        raise ConfigError(f"device {name!r}: CUDA is not available on this machine")
    if device.type == "cpu":
        keep_freed_memory()  # large temporaries reuse memory instead of faulting pages in
    return device


@contextlib.contextmanager
def autocast(device: torch.device, precision: str) -> Iterator[None]:
    """bf16 autocast when asked for (CUDA or CPU); a no-op in fp32."""
    if precision == "bf16":
        with torch.autocast(device_type=device.type, dtype=torch.bfloat16):
            yield
    else:
        yield


def cpu_bf16_slowdown(size: int = 384, repeats: int = 5) -> float:
    """Time of a (size × size) bf16 matmul over an fp32 one on this CPU, medians of ``repeats``
    after a warm-up call each; measured once per process (tens of milliseconds)."""
    if "ratio" not in _measured:
        g = torch.Generator().manual_seed(0)
        a, b = torch.randn(size, size, generator=g), torch.randn(size, size, generator=g)
        medians = []
        for dtype in (torch.float32, torch.bfloat16):
            x, y = a.to(dtype), b.to(dtype)
            torch.matmul(x, y)  # warm-up: kernel choice and packing, not timed
            times = []
            for _ in range(repeats):
                start = time.perf_counter()
                torch.matmul(x, y)
                times.append(time.perf_counter() - start)
            medians.append(sorted(times)[len(times) // 2])
        _measured["ratio"] = medians[1] / max(medians[0], 1e-9)
    return _measured["ratio"]


def effective_precision(device: torch.device, precision: str) -> str:
    """The precision a run computes in: ``precision``, except bf16 on a CPU whose bf16 matmul is
    more than :data:`CPU_BF16_MAX_SLOWDOWN` times slower than fp32, which falls back to fp32
    with a warning that gives the measured ratio (unless ``CREST_CPU_BF16=force``)."""
    if precision != "bf16" or device.type != "cpu" or os.environ.get(FORCE_ENV) == "force":
        return precision
    ratio = cpu_bf16_slowdown()
    if ratio <= CPU_BF16_MAX_SLOWDOWN:
        return precision
    log.warning(
        "precision bf16: a bf16 matmul on this CPU took %.1fx the time of an fp32 one "
        "(measured now; no bf16 units), so this run computes in fp32 instead; "
        "set %s=force to keep bf16",
        ratio,
        FORCE_ENV,
    )
    return "fp32"


def seed_everything(seed: int) -> None:
    random.seed(seed)
    np.random.seed(seed % 2**32)
    torch.manual_seed(seed)


def set_deterministic(enabled: bool) -> None:
    if enabled:
        os.environ.setdefault("CUBLAS_WORKSPACE_CONFIG", ":4096:8")
        torch.use_deterministic_algorithms(True)
        torch.backends.cudnn.benchmark = False


def epoch_seed(seed: int, epoch: int, rank: int = 0) -> int:
    """A seed per (run seed, epoch, rank): data order and dropout of an epoch do not depend on
    what ran before, so a resumed run replays exactly what an uninterrupted one would."""
    return (seed * 1_000_003 + epoch * 7919 + rank * 104_729) % 2**31
