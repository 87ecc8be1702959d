"""The local engine against Apache Spark in local mode on the same logs: wall time and the peak
memory of the whole process tree (Spark's JVM and its Python workers included).

    python benchmarks/bench_spark.py                       # about 1M and 10M lines, local[2]
    python benchmarks/bench_spark.py --scales 8.5 --master 'local[2]'

For each size the simulated log of bench_classify (made once into benchmarks/data/) is analysed
(ingest + classify into a fresh lake) by each engine, then classified again alone on that lake,
each in its own process tree, sampled every 0.2 s for the sum of its processes' resident memory.
Ratios are within one run: the machine is shared and absolute times swing. Prints figures; there
is no bar (Spark in local mode adds a JVM, a shuffle and Arrow transfers to the same work: it is
there to show what a cluster's executors run, not to beat the local engine on one machine).
Results go to benchmarks/out/spark.json as well.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import shutil
import subprocess
import sys
import threading
import time
from dataclasses import asdict, dataclass
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))

from bench_classify import simulated  # noqa: E402
from bench_ingest import DATA, OUT, log  # noqa: E402

TL = [sys.executable, "-m", "trafficlens"]
MB = 1024 * 1024


@dataclass
class Tree:
    """One command's wall time and the peak of its process tree's summed RSS."""

    wall: float
    peak_mb: float
    error: str = ""


def _children() -> dict[int, list[int]]:
    kids: dict[int, list[int]] = {}
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            with open(f"/proc/{entry}/stat") as f:
                ppid = int(f.read().rsplit(")", 1)[1].split()[1])
        except (OSError, ValueError, IndexError):
            continue
        kids.setdefault(ppid, []).append(int(entry))
    return kids


def _rss(pid: int) -> int:
    try:
        with open(f"/proc/{pid}/statm") as f:
            return int(f.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")
    except (OSError, ValueError, IndexError):
        return 0


def tree_rss(root: int) -> int:
    """The summed resident memory of `root` and every process below it."""
    kids, todo, total = _children(), [root], 0
    while todo:
        pid = todo.pop()
        total += _rss(pid)
        todo.extend(kids.get(pid, []))
    return total


def run_tree(cmd: list[str], name: str) -> Tree:
    OUT.mkdir(parents=True, exist_ok=True)
    peak = 0
    with open(OUT / f"{name}.stdout", "wb") as out, open(OUT / f"{name}.stderr", "wb") as err:
        started = time.perf_counter()
        proc = subprocess.Popen(cmd, stdin=subprocess.DEVNULL, stdout=out, stderr=err)
        done = threading.Event()

        def sample() -> None:
            nonlocal peak
            while not done.wait(0.2):
                peak = max(peak, tree_rss(proc.pid))

        sampler = threading.Thread(target=sample, daemon=True)
        sampler.start()
        code = proc.wait()
        done.set()
        sampler.join()
        wall = time.perf_counter() - started
    tail = (OUT / f"{name}.stderr").read_text(errors="replace").strip().splitlines()
    return Tree(wall, peak / MB, "" if code == 0 else f"exit {code}: {tail[-1] if tail else ''}")


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--scales", default="8.5,85", help="simulator scales (8.5: about 1M lines a week)")
    ap.add_argument("--seed", type=int, default=99)
    ap.add_argument("--master", default="local[2]")
    args = ap.parse_args(argv)
    DATA.mkdir(parents=True, exist_ok=True)
    engines = {"local": [], "spark": ["--engine", "spark", "--master", args.master]}
    results = []
    for scale in (float(s) for s in args.scales.split(",")):
        path, ranges, lines = simulated(scale, args.seed)
        row: dict = {"scale": scale, "lines": lines}
        for engine, extra in engines.items():
            lake = DATA / f"spark-bench-lake-{engine}"
            shutil.rmtree(lake, ignore_errors=True)
            log(f"{lines:,} lines, {engine}: analyze ...")
            common = ["--lake", str(lake), "--ranges", str(ranges), "--no-progress", *extra]
            ana = run_tree([*TL, "analyze", str(path), *common], f"spark-{engine}-analyze")
            log(f"{lines:,} lines, {engine}: classify ...")
            cls = run_tree([*TL, "classify", *common], f"spark-{engine}-classify")
            shutil.rmtree(lake, ignore_errors=True)
            row[engine] = {"analyze": asdict(ana), "classify": asdict(cls)}
        results.append(row)
    print(
        f"\nmachine: {platform.machine()}, {platform.system()}, {os.cpu_count()} cores, Python {platform.python_version()}"
    )
    print(f"spark master: {args.master}")
    head = (
        f"{'lines':>12} {'engine':>6} {'analyze s':>10} {'peak MB':>8} {'classify s':>10} {'peak MB':>8} {'x local':>8}"
    )
    print(head)
    for r in results:
        for engine in engines:
            a, c = r[engine]["analyze"], r[engine]["classify"]
            if a["error"] or c["error"]:
                print(f"{r['lines']:>12,} {engine:>6} failed: {a['error'] or c['error']}")
                continue
            base = r["local"]["classify"]["wall"]
            print(
                f"{r['lines']:>12,} {engine:>6} {a['wall']:>10.1f} {a['peak_mb']:>8,.0f} {c['wall']:>10.1f} "
                f"{c['peak_mb']:>8,.0f} {c['wall'] / base:>8.2f}"
            )
    (OUT / "spark.json").write_text(json.dumps(results, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
