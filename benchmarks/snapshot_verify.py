"""What verifying a snapshot costs a reader: the SHA-256 check of a split against reading that split.

Workload: a synthetic snapshot of ``--rows`` training rows (default 2,400, the learnable world's size) in
curate's row schema, each with ``--files`` code-context files of ``--file-kb`` KiB of code-like text drawn
from a 3,000-identifier vocabulary (so Parquet compresses it about as much as real code). Prints the split's
size, the time to read it (``pyarrow.parquet.read_table``, what every reader does anyway), the time of
:func:`swerl_core.snapshots.verify_snapshot` the first time in a process and again (the digest is kept per file
version once the file has been unchanged for a few seconds), and each as a share of the read.

Usage: ``python benchmarks/snapshot_verify.py [--rows 2400] [--files 5] [--file-kb 8] [--repeats 3]``
"""

from __future__ import annotations

import argparse
import random
import statistics
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

import pyarrow.parquet as pq

from swerl_core.demo.sample_snapshot import sample_rows, write_snapshot_rows
from swerl_core.snapshots import verify_snapshot


def code_text(rng: random.Random, size: int) -> str:
    """About ``size`` characters of indented, code-like lines."""
    words = ["def", "return", "self", "if", "else", "for", "in", "import", "None"] + [f"name_{i}" for i in range(3000)]
    lines: list[str] = []
    length = 0
    while length < size:
        line = "    " * rng.randrange(4) + " ".join(rng.choice(words) for _ in range(rng.randrange(3, 10)))
        lines.append(line)
        length += len(line) + 1
    return "\n".join(lines)


def timed(call: Callable[[], object]) -> float:
    """Seconds one ``call()`` takes."""
    started = time.perf_counter()
    call()
    return time.perf_counter() - started


def main() -> None:
    """Write the snapshot, let it settle, then time reading and verifying its training split."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=2400)
    parser.add_argument("--files", type=int, default=5)
    parser.add_argument("--file-kb", type=int, default=8)
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args()
    rng = random.Random(0)
    train, heldout = sample_rows(args.rows, 10)
    for row in train:
        size = args.file_kb * 1024
        files = [{"path": f"src/pkg/m{i}.py", "content": code_text(rng, size)} for i in range(args.files)]
        row["code_context"], row["oracle_new_content"] = files, files[:1]
    home = Path(tempfile.mkdtemp(prefix="swerl-bench-verify-"))
    snapshots_dir = write_snapshot_rows(home, "bench", train, heldout, "acme/toolkit").parent
    split = snapshots_dir / "bench" / "train.parquet"
    time.sleep(2.5)  # a digest is kept only for a file unchanged a few seconds (swerl_core.snapshots.file_sha256)

    first = timed(lambda: verify_snapshot(snapshots_dir, "bench", ("train",)))
    again = statistics.median(timed(lambda: verify_snapshot(snapshots_dir, "bench", ("train",))) for _ in range(3))
    read = statistics.median(timed(lambda: pq.read_table(split)) for _ in range(args.repeats))
    print(f"{args.rows} rows, train.parquet {split.stat().st_size / 1e6:.1f} MB")
    print(f"read the split:            {read * 1e3:8.1f} ms")
    print(f"verify, first in process:  {first * 1e3:8.1f} ms  ({first / read:.1%} of the read)")
    print(f"verify, again:             {again * 1e3:8.1f} ms  ({again / read:.1%} of the read)")


if __name__ == "__main__":
    main()
