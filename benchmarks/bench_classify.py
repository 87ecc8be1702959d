"""Classify cost: wall time and peak memory of `trafficlens classify` on a simulated lake.

    python benchmarks/bench_classify.py                 # about 10 million lines (scale 200, 7 days)
    python benchmarks/bench_classify.py --scale 20      # about 1 million

The log is simulated once into benchmarks/data/ (with its ranges), ingested into a fresh lake,
then classified; each step runs in its own subprocess, timed, with its peak RSS as the kernel
counts it. Results go to benchmarks/out/classify.json as well.
"""

from __future__ import annotations

import argparse
import json
import shutil
import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))

from bench_ingest import DATA, OUT, log, measure  # noqa: E402

TL = [sys.executable, "-m", "trafficlens"]


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--scale", type=float, default=200.0, help="simulator scale (200: about 10M lines a week)")
    ap.add_argument("--seed", type=int, default=99)
    args = ap.parse_args(argv)
    DATA.mkdir(parents=True, exist_ok=True)
    log_path = DATA / f"sim-{args.scale:g}-{args.seed}.log"
    ranges = DATA / f"sim-{args.scale:g}-{args.seed}-ranges"
    steps: dict[str, dict] = {}
    if not log_path.exists():
        log(f"simulating {log_path.name} ...")
        m = measure(
            [
                *TL,
                "simulate",
                "--out",
                str(log_path),
                "--scale",
                str(args.scale),
                "--seed",
                str(args.seed),
                "--ranges-out",
                str(ranges),
                "--no-progress",
            ],
            "simulate",
        )
        steps["simulate"] = m.__dict__
    lines = sum(1 for _ in open(log_path, "rb"))
    lake = DATA / "classify-lake"
    shutil.rmtree(lake, ignore_errors=True)
    log("ingest ...")
    m = measure([*TL, "ingest", str(log_path), "--lake", str(lake), "--no-progress"], "classify-ingest")
    steps["ingest"] = m.__dict__
    log("classify ...")
    m = measure([*TL, "classify", "--lake", str(lake), "--ranges", str(ranges), "--no-progress"], "classify")
    steps["classify"] = m.__dict__
    print(f"\n{lines:,} simulated lines")
    print(f"{'step':<10} {'seconds':>8} {'lines/s':>10} {'peak RSS MB':>12}")
    for name, s in steps.items():
        if s.get("error"):
            print(f"{name:<10} failed: {s['error']}")
            continue
        print(f"{name:<10} {s['wall']:>8.1f} {lines / s['wall']:>10,.0f} {s['rss_mb']:>12,.0f}")
    OUT.mkdir(parents=True, exist_ok=True)
    (OUT / "classify.json").write_text(json.dumps({"lines": lines, "steps": steps}, indent=1))
    tail = (OUT / "classify.stdout").read_text().strip().splitlines()
    if tail:
        print(tail[-1])
    return 1 if any(s.get("error") for s in steps.values()) else 0


if __name__ == "__main__":
    sys.exit(main())
