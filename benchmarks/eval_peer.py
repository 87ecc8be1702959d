"""The figures the behavioural peer (agent-census) publishes, measured the same way on our labels.

    python benchmarks/eval_peer.py                 # a simulated week of about 1M lines (scale 9)
    python benchmarks/eval_peer.py --scale 1       # quicker, about 120,000 lines

agent-census reports, on a simulated 1M-line log: 99% of stealth scrapers and 95% of
vulnerability probes caught, 41% of genuine AI crawlers called impersonators when it runs
offline, and about 17,000 lines/s. Here, on a week simulated with a seed no model trained on:

- stealth scrapers caught: clients of the `stealth_scraper` scenario labelled automated;
- vulnerability probes caught: `vuln_scanner` clients labelled malicious;
- genuine AI crawlers called impersonators (`identity = spoofed`), twice: offline (no published
  ranges at hand, no reverse DNS) and with the operators' ranges the simulator wrote; and, the
  other side of it, `spoofed_crawler` clients (a Googlebot, GPTBot or bingbot user agent from
  elsewhere) called spoofed;
- classify's speed in lines/s (ingest timed apart), as run in one process.

A client's scenario is the one its lines carry in the truth file. Exit 1 when a figure is worse
than the peer's.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
import time
from pathlib import Path

import polars as pl

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent))

from trafficlens.classify.pipeline import classify  # noqa: E402
from trafficlens.classify.training import EVAL_SEEDS  # noqa: E402
from trafficlens.ingest import ingest  # noqa: E402
from trafficlens.simulate import simulate  # noqa: E402

PEER = {"stealth_caught": 0.99, "probes_caught": 0.95, "ai_spoofed_offline": 0.41, "lines_per_s": 17_000}
AI_GENUINE = ("ai_crawler", "ai_assistant")  # declared AI fetchers from their operators' own addresses


def client_outcomes(lake: Path, truth: Path) -> pl.DataFrame:
    """One row per labelled client: its scenario (from the truth), automated, malicious, identity."""
    req = pl.scan_parquet(lake / "requests" / "**" / "*.parquet", hive_partitioning=True)
    t = pl.scan_parquet(truth).select("line_no", "scenario")
    return (
        req.select("client_id", "line_no")
        .join(t, on="line_no")
        .group_by("client_id")
        .agg(pl.col("scenario").mode().first())
        .join(
            pl.scan_parquet(lake / "clients" / "*.parquet").select(
                "client_id", "automated", "malicious", "identity", "actor_class"
            ),
            on="client_id",
        )
        .collect()
    )


def share(c: pl.DataFrame, scenarios: tuple[str, ...], cond: pl.Expr) -> tuple[float, int]:
    d = c.filter(pl.col("scenario").is_in(list(scenarios)))
    return (d.filter(cond).height / d.height if d.height else float("nan")), d.height


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--scale", type=float, default=9.0, help="simulator scale (9: about 1M lines a week)")
    ap.add_argument("--seed", type=int, default=EVAL_SEEDS[0])
    ap.add_argument("--json", help="also write the figures here")
    args = ap.parse_args(argv)
    out: dict = {}
    with tempfile.TemporaryDirectory(prefix="trafficlens-peer-") as tmp:
        work = Path(tmp)
        log, ranges = work / "sim.log", work / "ranges"
        # Offline: no ranges given, and an empty cache, so none that `ranges update` fetched here.
        os.environ["XDG_CACHE_HOME"] = str(work / "cache")
        sim = simulate(
            log, days=7, seed=args.seed, scale=args.scale, site_kind="shop", ranges_out=ranges, progress=False
        )
        lines = out["lines"] = sim.lines
        lake = work / "lake"
        t0 = time.perf_counter()
        ingest([str(log)], lake, progress=False)
        out["ingest_s"] = time.perf_counter() - t0
        for name, rdir in (("offline", None), ("ranges", ranges)):
            t0 = time.perf_counter()
            classify(lake, ranges_dir=rdir, progress=False)
            secs = time.perf_counter() - t0
            c = client_outcomes(lake, Path(sim.truth_path))
            out[f"{name}_classify_s"] = secs
            out[f"{name}_lines_per_s"] = lines / secs
            out[f"{name}_stealth_caught"] = share(c, ("stealth_scraper",), pl.col("automated"))
            out[f"{name}_probes_caught"] = share(c, ("vuln_scanner",), pl.col("malicious"))
            out[f"{name}_ai_spoofed"] = share(c, AI_GENUINE, pl.col("identity") == "spoofed")
            out[f"{name}_spoof_caught"] = share(c, ("spoofed_crawler",), pl.col("identity") == "spoofed")
            out[f"{name}_ai_identity"] = (
                c.filter(pl.col("scenario").is_in(list(AI_GENUINE))).group_by("identity").len().sort("identity").rows()
            )
    print(f"simulated shop week, seed {args.seed}: {lines:,} lines; ingest {out['ingest_s']:.1f} s")
    print(f"{'':<46} {'offline':>10} {'ranges':>10} {'peer':>10}")

    def row(label: str, key: str, peer: float | None, fmt: str = "{:.1%}") -> None:
        vals = [out[f"{n}_{key}"] for n in ("offline", "ranges")]
        cells = [fmt.format(v[0] if isinstance(v, tuple) else v) for v in vals]
        n = f" (n={vals[0][1]:,})" if isinstance(vals[0], tuple) else ""
        print(f"{label + n:<46} {cells[0]:>10} {cells[1]:>10} {'' if peer is None else fmt.format(peer):>10}")

    row("stealth scrapers caught", "stealth_caught", PEER["stealth_caught"])
    row("vulnerability probes caught", "probes_caught", PEER["probes_caught"])
    row("genuine AI fetchers called spoofed", "ai_spoofed", PEER["ai_spoofed_offline"])
    row("impersonating crawlers called spoofed", "spoof_caught", None)
    row("classify lines/s", "lines_per_s", PEER["lines_per_s"], "{:,.0f}")
    for n in ("offline", "ranges"):
        print(f"genuine AI fetchers by identity, {n}: {out[f'{n}_ai_identity']}")
    if args.json:
        Path(args.json).write_text(json.dumps(out, indent=1, default=str))
    worse = [
        out["offline_stealth_caught"][0] < PEER["stealth_caught"],
        out["offline_probes_caught"][0] < PEER["probes_caught"],
        out["offline_ai_spoofed"][0] > PEER["ai_spoofed_offline"],
        out["offline_lines_per_s"] < PEER["lines_per_s"],
    ]
    return 1 if any(worse) else 0


if __name__ == "__main__":
    sys.exit(main())
