"""Classify and analyze at several log sizes: wall time, lines/s and peak memory, against a bare
polars parse of the same log measured in the same run.

    python benchmarks/bench_classify.py                       # about 1M, 10M and 30M lines
    python benchmarks/bench_classify.py --scales 8.5          # about 1M (quick)

For each size the simulated log (with its published ranges) is made once into benchmarks/data/
and reused; then, each in its own subprocess with its peak RSS as the kernel counts it:
`baseline` (bench_ingest's ten lines of polars: split, cast, sink Parquet), `analyze` (ingest +
classify into a fresh lake) and, on that lake, `classify` again alone. The bars: analyze at
>= 0.2x the baseline's lines/s, peak RSS <= 2 GB at every size, and time growing with the log
(the largest size's classify at most 1.1x its share of lines more than the middle one's: 3.3x for
3x the lines). Results go to benchmarks/out/classify.json as well.
"""

from __future__ import annotations

import argparse
import json
import platform
import shutil
import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))

from bench_ingest import DATA, OUT, log, measure, run_baseline  # noqa: E402

TL = [sys.executable, "-m", "trafficlens"]
RATIO_BAR = 0.2
RSS_BAR_MB = 2000.0
GROWTH_SLACK = 1.1  # 30M may take 3.3x of 10M for 3x the lines


def simulated(scale: float, seed: int) -> tuple[Path, Path, int]:
    """The log of `scale` (made once), its ranges folder, its lines."""
    path = DATA / f"sim-{scale:g}-{seed}.log"
    ranges = DATA / f"sim-{scale:g}-{seed}-ranges"
    if not path.exists() or not ranges.is_dir():
        log(f"simulating {path.name} ...")
        cmd = [*TL, "simulate", "--out", str(path), "--scale", str(scale), "--seed", str(seed)]
        m = measure([*cmd, "--ranges-out", str(ranges), "--no-progress"], "simulate")
        if m.error:
            raise SystemExit(f"simulate failed: {m.error}")
    with open(path, "rb") as fh:
        lines = sum(1 for _ in fh)
    return path, ranges, lines


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--scales", default="8.5,85,256", help="simulator scales (8.5: about 1M lines a week)")
    ap.add_argument("--seed", type=int, default=99)
    args = ap.parse_args(argv)
    DATA.mkdir(parents=True, exist_ok=True)
    results = []
    for scale in (float(s) for s in args.scales.split(",")):
        path, ranges, lines = simulated(scale, args.seed)
        lake = DATA / "classify-lake"
        shutil.rmtree(lake, ignore_errors=True)
        log(f"{lines:,} lines: baseline ...")
        base = run_baseline(path)
        log("analyze ...")
        ana = measure(
            [*TL, "analyze", str(path), "--lake", str(lake), "--ranges", str(ranges), "--no-progress"], "analyze"
        )
        log("classify ...")
        cls = measure([*TL, "classify", "--lake", str(lake), "--ranges", str(ranges), "--no-progress"], "classify")
        shutil.rmtree(lake, ignore_errors=True)
        results.append(
            {
                "scale": scale,
                "lines": lines,
                "baseline": base.__dict__,
                "analyze": ana.__dict__,
                "classify": cls.__dict__,
            }
        )
    print(f"\nmachine: {platform.machine()}, {platform.system()}, Python {platform.python_version()}")
    print(
        f"{'lines':>12} {'baseline s':>10} {'analyze s':>10} {'lines/s':>9} {'x parse':>8} {'classify s':>10} {'lines/s':>9} {'peak RSS MB':>11}"
    )
    fails = []
    for r in results:
        b, a, c = r["baseline"], r["analyze"], r["classify"]
        if any(x.get("error") for x in (b, a, c)):
            print(f"{r['lines']:>12,} failed: {b.get('error') or a.get('error') or c.get('error')}")
            fails.append("a step failed")
            continue
        ratio = b["wall"] / a["wall"]
        rss = max(a["rss_mb"], c["rss_mb"])
        r["ratio"] = ratio
        print(
            f"{r['lines']:>12,} {b['wall']:>10.1f} {a['wall']:>10.1f} {r['lines'] / a['wall']:>9,.0f} {ratio:>8.2f} "
            f"{c['wall']:>10.1f} {r['lines'] / c['wall']:>9,.0f} {rss:>11,.0f}"
        )
        if rss > RSS_BAR_MB:
            fails.append(f"peak RSS {rss:,.0f} MB > {RSS_BAR_MB:,.0f} MB at {r['lines']:,} lines")
    done = [r for r in results if "ratio" in r]
    if done:
        big = max(done, key=lambda r: r["lines"])
        if big["ratio"] < RATIO_BAR:
            fails.append(f"analyze at {big['ratio']:.2f}x the bare parse at {big['lines']:,} lines (bar {RATIO_BAR}x)")
    if len(done) >= 2:
        a, b = sorted(done, key=lambda r: r["lines"])[-2:]
        growth = b["classify"]["wall"] / a["classify"]["wall"]
        bar = GROWTH_SLACK * b["lines"] / a["lines"]
        print(f"classify time {b['lines'] / a['lines']:.1f}x the lines: {growth:.2f}x the time (bar {bar:.2f}x)")
        if growth > bar:
            fails.append(f"classify grows {growth:.2f}x for {b['lines'] / a['lines']:.1f}x the lines")
    for f in fails:
        print(f"FAIL  {f}")
    OUT.mkdir(parents=True, exist_ok=True)
    (OUT / "classify.json").write_text(json.dumps(results, indent=1))
    return 1 if fails else 0


if __name__ == "__main__":
    sys.exit(main())
