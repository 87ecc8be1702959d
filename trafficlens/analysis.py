"""The main job as a library call: ingest logs, classify the lake, summarise what it holds.

`trafficlens analyze` is this function with a command line around it; notebooks and schedulers call
it directly:

    from trafficlens import analyze
    result = analyze(["/var/log/nginx/"], "lake", ranges_dir="ranges")
    print(result.summary)
"""

from __future__ import annotations

import contextlib
from collections.abc import Sequence
from dataclasses import dataclass, replace
from pathlib import Path
from typing import TYPE_CHECKING

from trafficlens.classify.buckets import ROWS_PER_BUCKET
from trafficlens.classify.pipeline import check_options, classify
from trafficlens.classify.threats import RobotsSource
from trafficlens.classify.verify import ingest_lookup
from trafficlens.ingest import IngestOptions, ingest
from trafficlens.report import lake_summary
from trafficlens.spark import check_engine, spark_session

if TYPE_CHECKING:
    from collections.abc import Callable

    from trafficlens.classify.pipeline import ClassifySummary
    from trafficlens.ingest import IngestSummary, SourceResult


@dataclass
class AnalyzeResult:
    """What one `analyze` run did: the ingest and classify summaries and the lake's summary text."""

    ingest: IngestSummary
    classify: ClassifySummary
    summary: str


def analyze(
    inputs: list[str],
    lake: str | Path,
    options: IngestOptions | None = None,
    *,
    ranges_dir: str | Path | None = None,
    rdns: bool = False,
    pages: str | Path | None = None,
    robots: RobotsSource | None = None,
    threats: str | Path | None = None,
    model_dir: str | Path | None = None,
    geo: Sequence[str | Path] | None = None,
    keys_dir: str | Path | None = None,
    bucket_rows: int = ROWS_PER_BUCKET,
    bucket_workers: int = 1,
    engine: str = "local",
    master: str | None = None,
    spark_conf: Sequence[str] = (),
    top: int = 10,
    progress: bool | None = None,
    on_source: Callable[[SourceResult], None] | None = None,
) -> AnalyzeResult:
    """Ingest `inputs` (files, folders, globs, `-`) into `lake`, label every request, and summarise.

    Each step is the library function of its own command (`ingest`, `classify`), so a re-run adds
    nothing already ingested and rewrites the labels whole; `on_source` hears of each source as
    ingest ends it (skipped ones included). `bucket_rows` and `bucket_workers` are classify's;
    `engine`, `master` and `spark_conf` are both steps'.
    """
    check_engine(engine, master, spark_conf)
    check_options(
        ranges_dir=ranges_dir,
        pages=pages,
        robots=robots,
        threats=threats,
        model_dir=model_dir,
        geo=geo,
        keys_dir=keys_dir,
    )
    opts = options or IngestOptions()
    if opts.address_ranges is None:  # --ip-privacy records the range files classify will verify by
        opts = replace(opts, address_ranges=ingest_lookup(ranges_dir))
    with contextlib.ExitStack() as engines:
        if engine == "spark":  # one Spark session for both steps
            engines.enter_context(spark_session(master, spark_conf))
        ingested = ingest(
            inputs,
            lake,
            opts,
            progress=progress,
            on_source=on_source,
            engine=engine,
            master=master,
            spark_conf=spark_conf,
        )
        classified = classify(
            lake,
            ranges_dir=ranges_dir,
            rdns=rdns,
            progress=progress,
            pages=pages,
            robots=robots,
            threats=threats,
            model_dir=model_dir,
            geo=geo,
            keys_dir=keys_dir,
            bucket_rows=bucket_rows,
            bucket_workers=bucket_workers,
            engine=engine,
            master=master,
            spark_conf=spark_conf,
        )
    return AnalyzeResult(ingested, classified, lake_summary(lake, top=top))


__all__ = ["AnalyzeResult", "analyze"]
