"""Report cost: the full JSON report on a classified lake, against a bare DuckDB count(*) over it.

    python benchmarks/bench_report.py                       # the classify benchmark's lake (~10M requests)
    python benchmarks/bench_report.py --lake trafficlens-lake

The lake defaults to benchmarks/data/classify-lake, which `python benchmarks/bench_classify.py`
builds; `trafficlens report --format json` runs in its own process, timed with its peak RSS, three
times (the best is kept: the first pays for a cold file cache). Results go to
benchmarks/out/report.json too.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))

from bench_ingest import DATA, OUT, log, measure  # noqa: E402

TL = [sys.executable, "-m", "trafficlens"]


def bare(lake: Path, sql: str) -> tuple[int, float]:
    """The first value of `sql` ({src}: the lake's requests) and the best of three runs, in bare
    DuckDB (its own process, no trafficlens)."""
    sql = sql.format(src=f"read_parquet('{lake}/requests/*/*.parquet')")
    code = (
        "import duckdb, sys, time\n"
        "con = duckdb.connect()\n"
        "best = None\n"
        "for _ in range(3):\n"
        "    t = time.perf_counter()\n"
        f"    n = con.sql({sql!r}).fetchall()[0][0]\n"
        "    best = min(best or 1e9, time.perf_counter() - t)\n"
        "print(n, best)\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout.split()
    return int(float(out[0])), float(out[1])


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--lake", type=Path, default=DATA / "classify-lake")
    ap.add_argument("--runs", type=int, default=3)
    args = ap.parse_args(argv)
    lake = args.lake.resolve()
    if not (lake / "requests").exists():
        log(f"{lake} has no classified requests: run `python benchmarks/bench_classify.py` first")
        return 1
    n, count_s = bare(lake, "SELECT count(*) FROM {src}")
    # One pass that every report needs at least: requests and bytes per client and day.
    _, scan_s = bare(
        lake, "SELECT count(*) FROM (SELECT client_id, ts::DATE, count(*), sum(bytes) FROM {src} GROUP BY 1, 2)"
    )
    runs = []
    for i in range(args.runs):
        log(f"report run {i + 1} ...")
        out = OUT / "report-output.json"
        OUT.mkdir(parents=True, exist_ok=True)
        m = measure([*TL, "report", "--lake", str(lake), "--format", "json", "--out", str(out)], "report")
        if getattr(m, "error", None):
            log(f"report failed: {m.error}")
            return 1
        runs.append(m.__dict__)
    best = min(runs, key=lambda r: r["wall"])
    sections = list(json.loads((OUT / "report-output.json").read_text()))
    print(f"\n{n:,} requests in {lake.name}")
    print(f"{'what':<34} {'seconds':>8} {'peak RSS MB':>12}")
    print(f"{'bare DuckDB count(*)':<34} {count_s:>8.3f}")
    print(f"{'bare DuckDB group by client, day':<34} {scan_s:>8.2f}")
    print(f"{'trafficlens report --format json':<34} {best['wall']:>8.2f} {best['rss_mb']:>12,.0f}")
    others = best.get("others")
    print(
        f"report / count(*): {best['wall'] / count_s:,.0f}x (count(*) reads only Parquet metadata); "
        f"report / one group-by pass: {best['wall'] / scan_s:.1f}x; {len(sections)} sections; "
        "runs: "
        + ", ".join(f"{r['wall']:.2f}" for r in runs)
        + " s"
        + (f"; other processes used {others:.0%} of the CPU meanwhile" if others is not None else "")
    )
    (OUT / "report.json").write_text(
        json.dumps(
            {
                "requests": n,
                "count_star_s": count_s,
                "group_by_s": scan_s,
                "runs": runs,
                "best_s": best["wall"],
                "sections": sections,
            },
            indent=1,
        )
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
