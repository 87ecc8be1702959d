"""How well the inferred AI referrals (the report's `inferred_referrals`) find the visits that
follow an assistant's fetch, on simulated weeks no model trained on.

    python benchmarks/eval_referrals.py               # three site kinds, windows 60-900 s
    python benchmarks/eval_referrals.py --scale 0.5   # quicker

The simulator plants visits that follow a user-triggered assistant's fetch of a page, with no
referrer (scenario `ai_fetch_visit`); each inferred visit is checked against the truth of its
landing request. Printed per window: inferred visits, true ones, precision, recall, the report's
`expected_by_chance` (the time-reversed control) against the false ones actually found.
The clicks' delays are the simulator's assumption (3-300 s, log-uniform), so recall at a
window of 300 s or more is by construction; precision and the control's accuracy are what this
measures: they come from the site's own traffic (people landing on popular pages without a
referrer, assistants fetching them), which the inference was not shaped on.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
from pathlib import Path

import polars as pl

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent))

from trafficlens.classify.pipeline import classify  # noqa: E402
from trafficlens.ingest import ingest  # noqa: E402
from trafficlens.report import Report  # noqa: E402
from trafficlens.simulate import simulate  # noqa: E402

SEEDS = {"shop": 941, "media": 942, "travel": 943}  # used by nothing else
WINDOWS = (60.0, 120.0, 300.0, 900.0)


def measure(folder: Path, kind: str, seed: int, scale: float) -> list[dict]:
    log = folder / f"{kind}.log"
    simulate(log, days=7, seed=seed, scale=scale, site_kind=kind, ranges_out=folder / f"ranges-{kind}", progress=False)
    lake = folder / f"lake-{kind}"
    ingest([str(log)], lake, progress=False)
    classify(lake, ranges_dir=folder / f"ranges-{kind}", progress=False)
    truth = pl.read_parquet(str(log) + ".truth.parquet").select("line_no", "scenario", "actor_class")
    req = pl.read_parquet(lake / "requests" / "**" / "*.parquet", hive_partitioning=False)
    first = req.sort("ts", "source", "line_no").group_by("session_id").first().select("session_id", "line_no")
    labelled = first.join(truth, on="line_no")
    planted = labelled.filter((pl.col("scenario") == "ai_fetch_visit") & (pl.col("actor_class") == "human")).height
    rows = []
    for w in WINDOWS:
        with Report(lake, ai_window=w, top=1_000_000) as rep:
            inf = rep.inferred_referrals()
        got = inf["visits"].join(labelled, on="session_id", how="left")
        true = got.filter(pl.col("scenario") == "ai_fetch_visit").height
        rows.append(
            {
                "site": kind,
                "window_s": w,
                "inferred": got.height,
                "true": true,
                "planted": planted,
                "precision": true / got.height if got.height else None,
                "recall": true / planted if planted else None,
                "false": got.height - true,
                "expected_by_chance": inf["summary"]["expected_by_chance"],
            }
        )
    return rows


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--scale", type=float, default=1.0)
    args = ap.parse_args()
    rows: list[dict] = []
    with tempfile.TemporaryDirectory(prefix="eval-referrals-") as tmp:
        for kind, seed in SEEDS.items():
            rows += measure(Path(tmp), kind, seed, args.scale)
    df = pl.DataFrame(rows)
    print("inferred AI referrals against the simulator's truth (unseen seeds)")
    print(
        f"{'site':<7} {'window':>7} {'inferred':>9} {'true':>6} {'planted':>8} {'precision':>10} {'recall':>7} {'false':>6} {'by chance':>10}"
    )
    for r in df.iter_rows(named=True):
        print(
            f"{r['site']:<7} {r['window_s']:>6.0f}s {r['inferred']:>9,} {r['true']:>6,} {r['planted']:>8,} "
            f"{r['precision']:>10.3f} {r['recall']:>7.3f} {r['false']:>6,} {r['expected_by_chance']:>10,}"
        )
    total = (
        df.group_by("window_s")
        .agg(pl.col("inferred", "true", "planted", "false", "expected_by_chance").sum())
        .sort("window_s")
    )
    for r in total.iter_rows(named=True):
        print(
            f"all     {r['window_s']:>6.0f}s precision {r['true'] / r['inferred']:.3f} recall {r['true'] / r['planted']:.3f}; "
            f"false {r['false']:,}, expected by chance {r['expected_by_chance']:,}"
        )


if __name__ == "__main__":
    main()
