"""Benchmark: stream a large benchmark HDF5 file through ``FeatureDataset`` with bounded memory.

Not run in CI. It writes (or reuses) a benchmark file of at least ``--size-gb`` gigabytes at the
CUB grid, ``feature_map`` (N, 2048, 14, 14) float16 (196 regions x 2048 channels, 802,816 bytes
a row), with a small made-up class side, then streams every row through
``DataLoader(FeatureDataset(path, rows), batch_size=64)`` in sequential and in shuffled order,
with each requested number of DataLoader workers. It reports samples/s, MB/s (stored bytes read
from the file per second) and the peak resident memory of the streaming process, and asserts
that the peak stays under ``--max-rss-mb`` (1000 MB by default).

Every phase runs in a fresh child interpreter (this orchestrating process imports only the
standard library), so each streaming run's peak RSS starts from nothing and never includes the
writer's memory. Peak RSS is reported three ways:

* ``self``: ``getrusage(RUSAGE_SELF).ru_maxrss`` of the streaming process;
* ``children``: the peak RSS of the largest DataLoader worker (0 without workers), its
  ``VmHWM`` from ``/proc/<pid>/status`` as last seen by a 20 ms sampler thread.
  ``getrusage(RUSAGE_CHILDREN).ru_maxrss`` is kept in the JSON as ``rusage_children_mb`` but
  is useless here: importing torch and h5py runs ``/sbin/ldconfig -p`` and ``uname -p``, and a
  vfork'd-then-exec'd child inherits its parent's high-water mark, so it reads ~0.5 GB even
  without workers;
* ``tree``: the memory of the streaming process and its workers together, sampled from
  ``/proc/<pid>/smaps_rollup`` every 20 ms while streaming: the parent's RSS plus each
  worker's private pages, so that pages the forked workers share with their parent (most of
  the ~0.55 GB that importing torch maps) count once. The plain sum of RSS and of PSS over the
  tree are kept in the JSON too.

``self + children`` is the ``peak RSS`` column; with workers it counts the shared torch pages
twice (once in the parent, once in the largest worker), so it overstates what the tree holds.
The bound is asserted on ``self`` (exact, from the kernel) and on the sampled ``tree`` peak.

Before each run the orchestrating process drops the OS page cache (``echo 3 >
/proc/sys/vm/drop_caches``, needs root), falling back to ``posix_fadvise(DONTNEED)`` on the file,
and checks with util-linux ``fincore`` how much of the file is still cached; ``--cache warm``
skips the drop. Nothing but the DataLoader workers is started from the streaming process (a
fincore in the streaming process would be one more helper with its parent's high-water mark).

Usage::

    python benchmarks/stream_features.py                      # 2.2 GB, workers 0 and 2
    python benchmarks/stream_features.py --size-gb 0.1 --workers 0 --keep --json-out out.json
"""

from __future__ import annotations

import argparse
import contextlib
import json
import math
import os
import platform
import resource
import shutil
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import Any

#: The CUB grid: ResNet-101 layer4 on a 448x448 image, (channels, h, w).
FEATURE_SHAPE = (2048, 14, 14)
#: Bytes of one stored float16 feature-map row.
ROW_BYTES = 2 * FEATURE_SHAPE[0] * FEATURE_SHAPE[1] * FEATURE_SHAPE[2]
NUM_CLASSES = 200
NUM_SEEN = 150
NUM_ATTRIBUTES = 312
W2V_DIM = 300
GENERATOR = "benchmarks/stream_features.py"
MB = 1e6
REPO_ROOT = Path(__file__).resolve().parents[1]


# ---- paths -------------------------------------------------------------------------------
def default_path() -> Path:
    """``$CREST_CACHE/bench/stream_cub_grid.h5``, else ``/tmp/crest-bench/stream_cub_grid.h5``."""
    cache = os.environ.get("CREST_CACHE")
    root = Path(cache) / "bench" if cache else Path("/tmp/crest-bench")
    return root / "stream_cub_grid.h5"


def check_path(path: Path) -> Path:
    """Refuse to write under a ``shared`` folder beside or inside the repository."""
    resolved = path.expanduser().resolve()
    for shared in (REPO_ROOT.parent / "shared", REPO_ROOT / "shared"):
        if resolved.is_relative_to(shared.resolve()):
            raise SystemExit(f"refusing to write the benchmark file under {shared}: {resolved}")
    return resolved


def rows_for(size_gb: float) -> int:
    """Number of float16 CUB-grid rows whose feature map takes at least ``size_gb`` * 1e9 bytes."""
    return max(NUM_CLASSES, math.ceil(size_gb * 1e9 / ROW_BYTES))


# ---- writing -----------------------------------------------------------------------------
def make_benchmark(num_rows: int, seed: int) -> Any:
    """A made-up class side: 200 classes (150 seen, 50 unseen), 312 attributes, w2v 312x300.

    Row ``r`` has class ``r % 200``. Rows of unseen classes form ``test_unseen``; of the rows of
    seen classes every fifth occurrence of a class (the 5th, 10th, ...) goes to ``test_seen`` and
    the rest to ``trainval``, so every test_seen class also has training rows.
    """
    import numpy as np

    from crest.data.schema.benchmark import Benchmark

    rng = np.random.default_rng(seed)
    original = rng.random((NUM_CLASSES, NUM_ATTRIBUTES), dtype=np.float32) * 100.0
    att = original / np.linalg.norm(original, axis=1, keepdims=True)
    rows = np.arange(num_rows, dtype=np.int64)
    labels = rows % NUM_CLASSES
    occurrence = rows // NUM_CLASSES
    seen = labels < NUM_SEEN
    test_seen = seen & (occurrence % 5 == 4)
    return Benchmark(
        att=att,
        original_att=original,
        w2v_att=rng.standard_normal((NUM_ATTRIBUTES, W2V_DIM), dtype=np.float32),
        labels=labels,
        splits={
            "trainval": rows[seen & ~test_seen],
            "test_seen": rows[test_seen],
            "test_unseen": rows[~seen],
        },
        class_names=[f"class_{i:03d}" for i in range(NUM_CLASSES)],
        attribute_names=[f"attribute_{i:03d}" for i in range(NUM_ATTRIBUTES)],
        feature_shape=FEATURE_SHAPE,
        feature_dtype="float16",
        meta={"generator": {"name": GENERATOR, "rows": num_rows, "seed": seed}},
    )


def existing_is_complete(path: Path, num_rows: int) -> bool:
    """Whether ``path`` is already a complete benchmark file of the wanted size and layout.

    ``BenchmarkWriter`` renames onto the final name only once every row is written, so a file
    under that name that reads back with the right shape, dtype and row count is complete.
    """
    from crest.data.schema.hdf5 import read_benchmark
    from crest.errors import DataError

    if not path.exists():
        return False
    try:
        bench = read_benchmark(path)
    except DataError:
        return False
    generator = bench.meta.get("generator")
    return (
        bench.num_images == num_rows
        and bench.feature_shape == FEATURE_SHAPE
        and bench.feature_dtype == "float16"
        and isinstance(generator, dict)
        and generator.get("name") == GENERATOR
    )


def write_file(path: Path, num_rows: int, batch_rows: int, seed: int) -> dict[str, Any]:
    """Write (or reuse) the benchmark file in batches of random float16 rows; return a record."""
    import numpy as np

    from crest.data.schema.writer import BenchmarkWriter

    start = time.perf_counter()
    reused = existing_is_complete(path, num_rows)
    if not reused:
        bench = make_benchmark(num_rows, seed)
        rng = np.random.default_rng(seed + 1)
        with BenchmarkWriter(path, bench, dtype="float16") as writer:
            for first in range(0, num_rows, batch_rows):
                n = min(batch_rows, num_rows - first)
                batch = np.empty((n, *FEATURE_SHAPE), dtype=np.float16)
                for i in range(0, n, 8):  # float32 draws 8 rows at a time
                    batch[i : i + 8] = rng.random((min(8, n - i), *FEATURE_SHAPE), np.float32)
                writer.write_features(first, batch)
        os.sync()  # dirty pages cannot be dropped from the page cache
    return {
        "path": str(path),
        "reused": reused,
        "rows": num_rows,
        "file_bytes": path.stat().st_size,
        "seconds": time.perf_counter() - start,
        "writer_peak_rss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024 / MB,
    }


# ---- page cache --------------------------------------------------------------------------
def drop_page_cache(path: Path) -> str:
    """Evict ``path`` from the OS page cache; return the method that worked (or ``"none"``)."""
    os.sync()
    try:
        Path("/proc/sys/vm/drop_caches").write_text("3\n")
        return "drop_caches"
    except OSError:
        pass
    try:
        fd = os.open(path, os.O_RDONLY)
        try:
            os.posix_fadvise(fd, 0, 0, os.POSIX_FADV_DONTNEED)
        finally:
            os.close(fd)
        return "fadvise"
    except (OSError, AttributeError):
        return "none"


def cached_bytes(path: Path) -> int | None:
    """Bytes of ``path`` resident in the page cache, from util-linux ``fincore`` if present."""
    if shutil.which("fincore") is None:
        return None
    try:
        out = subprocess.run(
            ["fincore", "--bytes", "--noheadings", "--output", "RES", str(path)],
            capture_output=True,
            text=True,
            check=True,
        ).stdout
        return int(out.split()[0])
    except (subprocess.CalledProcessError, ValueError, IndexError):
        return None


# ---- memory sampling ---------------------------------------------------------------------
def _tree_pids() -> list[int]:
    """This process and all its descendants (DataLoader workers), from ``/proc``."""
    pids, frontier = [os.getpid()], [os.getpid()]
    while frontier:
        pid = frontier.pop()
        for task in Path(f"/proc/{pid}/task").glob("*"):
            with contextlib.suppress(OSError):
                kids = [int(k) for k in (task / "children").read_text().split()]
                pids.extend(kids)
                frontier.extend(kids)
    return pids


def _smaps_kb(pid: int) -> dict[str, int]:
    """``Rss``, ``Pss`` and ``Private`` (clean + dirty) of ``pid`` in kB; zeros if it is gone."""
    out = {"Rss": 0, "Pss": 0, "Private": 0}
    with contextlib.suppress(OSError):
        for line in Path(f"/proc/{pid}/smaps_rollup").read_text().splitlines():
            key, _, rest = line.partition(":")
            if key in ("Rss", "Pss"):
                out[key] = int(rest.split()[0])
            elif key in ("Private_Clean", "Private_Dirty"):
                out["Private"] += int(rest.split()[0])
    return out


def _hwm_kb(pid: int) -> int:
    """Peak RSS (``VmHWM``) of ``pid`` in kB; 0 if the process is gone."""
    with contextlib.suppress(OSError, ValueError, IndexError):
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmHWM:"):
                return int(line.split()[1])
    return 0


class TreeMemorySampler:
    """Background thread tracking the peak memory of this process and its children together.

    ``peak_kb``: this process's RSS plus its descendants' private pages (shared pages once);
    ``peak_rss_kb`` and ``peak_pss_kb``: the plain sums of RSS and of PSS over the tree;
    ``children_hwm_kb``: the largest ``VmHWM`` (peak RSS) seen of any descendant.
    """

    def __init__(self, interval_s: float = 0.02) -> None:
        self.interval_s = interval_s
        self.peak_kb = 0
        self.peak_rss_kb = 0
        self.peak_pss_kb = 0
        self.max_processes = 0
        self.children_hwm_kb = 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _sample(self) -> None:
        pids = _tree_pids()
        sizes = [_smaps_kb(pid) for pid in pids]
        own = sizes[0]["Rss"] + sum(s["Private"] for s in sizes[1:])
        self.peak_kb = max(self.peak_kb, own)
        self.peak_rss_kb = max(self.peak_rss_kb, sum(s["Rss"] for s in sizes))
        self.peak_pss_kb = max(self.peak_pss_kb, sum(s["Pss"] for s in sizes))
        self.max_processes = max(self.max_processes, len(pids))
        for pid in pids[1:]:
            self.children_hwm_kb = max(self.children_hwm_kb, _hwm_kb(pid))

    def _run(self) -> None:
        while not self._stop.wait(self.interval_s):
            self._sample()

    def __enter__(self) -> TreeMemorySampler:
        self._sample()
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join()
        self._sample()


# ---- streaming ---------------------------------------------------------------------------
def stream_file(
    path: Path, shuffle: bool, workers: int, batch_size: int, seed: int
) -> dict[str, Any]:
    """Read every row through ``DataLoader(FeatureDataset)``; return throughput and peak memory."""
    import gc

    import numpy as np
    import torch

    from crest.data.schema.dataset import FeatureDataset, feature_loader
    from crest.data.schema.hdf5 import open_h5

    torch.set_num_threads(1)
    with open_h5(path) as f:
        num_rows = int(f["feature_map"].shape[0])
    dataset = FeatureDataset(path, np.arange(num_rows))
    generator = torch.Generator().manual_seed(seed)
    loader = feature_loader(
        dataset, batch_size=batch_size, shuffle=shuffle, num_workers=workers, generator=generator
    )
    import_rss_mb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024 / MB
    samples, checksum = 0, 0.0
    with TreeMemorySampler() as sampler:
        start = time.perf_counter()
        for features, labels in loader:
            assert features.dtype == torch.float32
            checksum += float(features.sum())
            samples += int(labels.numel())
        seconds = time.perf_counter() - start
        del loader  # workers are joined when the exhausted iterator and the loader go away
        gc.collect()
    dataset.close()
    if samples != num_rows:
        raise RuntimeError(f"streamed {samples} samples; the file has {num_rows} rows")
    self_mb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024 / MB
    children_mb = sampler.children_hwm_kb * 1024 / MB
    rusage_children_mb = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss * 1024 / MB
    file_bytes = num_rows * ROW_BYTES
    return {
        "order": "shuffled" if shuffle else "sequential",
        "workers": workers,
        "batch_size": batch_size,
        "rows": num_rows,
        "samples": samples,
        "seconds": seconds,
        "samples_per_s": samples / seconds,
        "mb_per_s": file_bytes / MB / seconds,
        "checksum": checksum,
        "rss_after_imports_mb": import_rss_mb,
        "peak_rss_self_mb": self_mb,
        "peak_rss_children_mb": children_mb,
        "peak_rss_mb": self_mb + children_mb,
        "rusage_children_mb": rusage_children_mb,
        "tree_peak_mb": sampler.peak_kb * 1024 / MB,
        "tree_peak_rss_sum_mb": sampler.peak_rss_kb * 1024 / MB,
        "tree_peak_pss_sum_mb": sampler.peak_pss_kb * 1024 / MB,
        "tree_max_processes": sampler.max_processes,
    }


# ---- orchestration -----------------------------------------------------------------------
def run_child(args: list[str]) -> dict[str, Any]:
    """Run one phase of this script in a fresh interpreter; return its JSON record."""
    cmd = [sys.executable, str(Path(__file__).resolve()), *args]
    proc = subprocess.run(cmd, capture_output=True, text=True)
    if proc.returncode != 0:
        sys.stderr.write(proc.stdout + proc.stderr)
        raise SystemExit(f"phase failed ({proc.returncode}): {' '.join(cmd)}")
    return json.loads(proc.stdout.strip().splitlines()[-1])


def markdown_table(file_bytes: int, runs: list[dict[str, Any]]) -> str:
    """The results as a small markdown table."""
    lines = [
        "| file size | rows | order | workers | cache | samples/s | MB/s | peak RSS MB "
        "(self + children) | tree MB |",
        "|---:|---:|---|---:|---|---:|---:|---:|---:|",
    ]
    for r in runs:
        lines.append(
            f"| {file_bytes / 1e9:.2f} GB | {r['rows']} | {r['order']} | {r['workers']} "
            f"| {r['cache']} | {r['samples_per_s']:.1f} | {r['mb_per_s']:.0f} "
            f"| {r['peak_rss_mb']:.0f} ({r['peak_rss_self_mb']:.0f} + "
            f"{r['peak_rss_children_mb']:.0f}) | {r['tree_peak_mb']:.0f} |"
        )
    return "\n".join(lines)


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    """Command-line options."""
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--size-gb", type=float, default=2.2, help="feature-map size, 1e9 bytes")
    p.add_argument("--path", type=Path, default=None, help=f"file (default {default_path()})")
    p.add_argument("--workers", default="0,2", help="comma-separated DataLoader num_workers")
    p.add_argument("--orders", default="sequential,shuffled", help="sequential and/or shuffled")
    p.add_argument("--cache", default="cold", help="cold (drop page cache first) and/or warm")
    p.add_argument("--batch-size", type=int, default=64)
    p.add_argument("--write-batch", type=int, default=64, help="rows per write batch")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--max-rss-mb", type=float, default=1000.0, help="asserted peak RSS bound")
    p.add_argument("--json-out", type=Path, default=None, help="also write the results here")
    p.add_argument("--keep", action="store_true", help="keep the benchmark file afterwards")
    p.add_argument("--phase", choices=["write", "stream"], default=None, help=argparse.SUPPRESS)
    p.add_argument("--shuffle", action="store_true", help=argparse.SUPPRESS)
    p.add_argument("--num-workers", type=int, default=0, help=argparse.SUPPRESS)
    return p.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    """Write or reuse the file, stream it in every configuration, report, and clean up."""
    args = parse_args(argv)
    path = check_path(args.path or default_path())
    num_rows = rows_for(args.size_gb)
    if args.phase == "write":
        print(json.dumps(write_file(path, num_rows, args.write_batch, args.seed)))
        return 0
    if args.phase == "stream":
        record = stream_file(path, args.shuffle, args.num_workers, args.batch_size, args.seed)
        print(json.dumps(record))
        return 0

    common = ["--path", str(path), "--size-gb", str(args.size_gb), "--seed", str(args.seed)]
    print(f"file: {path} ({num_rows} rows of {FEATURE_SHAPE} float16, {ROW_BYTES} bytes a row)")
    written = run_child([*common, "--phase", "write", "--write-batch", str(args.write_batch)])
    action = "reused" if written["reused"] else f"written in {written['seconds']:.1f} s"
    print(
        f"file size: {written['file_bytes']} bytes ({written['file_bytes'] / 1e9:.3f} GB), "
        f"{action}; writer peak RSS {written['writer_peak_rss_mb']:.0f} MB"
    )
    runs: list[dict[str, Any]] = []
    try:
        for cache in args.cache.split(","):
            for workers in (int(w) for w in args.workers.split(",")):
                for order in args.orders.split(","):
                    if order not in ("sequential", "shuffled") or cache not in ("cold", "warm"):
                        raise SystemExit(f"unknown order {order!r} or cache {cache!r}")
                    flags = ["--phase", "stream", "--num-workers", str(workers)]
                    flags += ["--batch-size", str(args.batch_size)]
                    flags += ["--shuffle"] if order == "shuffled" else []
                    drop = drop_page_cache(path) if cache == "cold" else "skipped"
                    before = cached_bytes(path)
                    r = run_child([*common, *flags])
                    r.update(cache=cache, cache_drop=drop, cached_bytes_before=before)
                    r["cached_bytes_after"] = cached_bytes(path)
                    runs.append(r)
                    print(
                        f"  {order:10s} workers={workers} {cache} (drop: {drop}, file bytes in "
                        f"page cache before {before}, after {r['cached_bytes_after']}): "
                        f"{r['samples']} samples in {r['seconds']:.2f} s, "
                        f"{r['samples_per_s']:.1f} samples/s, {r['mb_per_s']:.0f} MB/s; "
                        f"RSS after imports {r['rss_after_imports_mb']:.0f} MB, peak RSS self "
                        f"{r['peak_rss_self_mb']:.0f} MB + children "
                        f"{r['peak_rss_children_mb']:.0f} MB; tree peak {r['tree_peak_mb']:.0f} MB "
                        f"(sums over {r['tree_max_processes']} processes: RSS "
                        f"{r['tree_peak_rss_sum_mb']:.0f} MB, PSS {r['tree_peak_pss_sum_mb']:.0f} MB)",
                        flush=True,
                    )
    finally:
        if not args.keep:
            path.unlink(missing_ok=True)
            print(f"deleted {path} (pass --keep to keep it)")
    print()
    print(markdown_table(written["file_bytes"], runs))
    worst_self = max(r["peak_rss_self_mb"] for r in runs)
    worst_tree = max(r["tree_peak_mb"] for r in runs)
    result = {
        "file": written,
        "runs": runs,
        "max_rss_mb": args.max_rss_mb,
        "worst_peak_rss_self_mb": worst_self,
        "worst_tree_peak_mb": worst_tree,
        "worst_peak_rss_self_plus_children_mb": max(r["peak_rss_mb"] for r in runs),
        "python": platform.python_version(),
        "cpus": os.cpu_count(),
    }
    if args.json_out is not None:
        args.json_out.parent.mkdir(parents=True, exist_ok=True)
        args.json_out.write_text(json.dumps(result, indent=2) + "\n")
    bound = args.max_rss_mb
    ok = worst_self < bound and worst_tree < bound
    print(
        f"\nworst peak RSS of the streaming process {worst_self:.0f} MB, of it and its workers "
        f"{worst_tree:.0f} MB: {'under' if ok else 'NOT under'} the {bound:.0f} MB bound"
    )
    assert ok, f"peak memory {max(worst_self, worst_tree):.0f} MB exceeds {bound:.0f} MB"
    return 0


if __name__ == "__main__":
    sys.exit(main())
