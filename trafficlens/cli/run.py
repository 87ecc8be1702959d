"""The main job and its steps: `ingest`, `classify`, `analyze`."""

from __future__ import annotations

import sys
from collections.abc import Callable
from typing import Any

import click

from trafficlens.classify.buckets import ROWS_PER_BUCKET
from trafficlens.cli.base import LAKE_HELP, default_lake, friendly, main
from trafficlens.ingest.formats import FORMAT_NAMES
from trafficlens.schema import IP_PRIVACY
from trafficlens.spark import ENGINES, INSTALL


def ingest_options(fn: Callable[..., Any]) -> Callable[..., Any]:
    """The options of `ingest`, shared with `analyze`."""
    options = [
        click.option("--lake", default=default_lake, show_default=False, help=LAKE_HELP),
        click.option("--format", "fmt", help=f"Log format, if not auto-detected: {', '.join(FORMAT_NAMES)}."),
        click.option("--log-format", help="A custom nginx log_format or Apache LogFormat string."),
        click.option("--json-map", help="JSON lines: column=$.path pairs, e.g. 'user_agent=$.ua,ts=$.time'."),
        click.option("--site", help="Site name for these logs (default: the virtual host, or 'default')."),
        click.option("--tz", help="Time zone of timestamps that carry no offset (default UTC), e.g. Europe/Paris."),
        click.option(
            "--time-window",
            help="FROM..TO: reject lines timed outside it (default 1991-08-06..two days from now), "
            "e.g. 2020-01-01..2030-01-01; either side may be left empty.",
        ),
        click.option(
            "--ip-privacy",
            type=click.Choice(IP_PRIVACY),
            help="Keep no client address: truncate to /24 and /48 (with a keyed pseudonym per address), or "
            "hash with the lake's own key; off keeps them. The lake remembers the choice.",
        ),
        click.option(
            "--redact-query/--keep-query",
            default=None,
            help="Drop query-string values (keys stay), in events, referers and rejected lines; "
            "the lake remembers the choice.",
        ),
        click.option(
            "--keep-query-values",
            metavar="KEYS",
            help="With --redact-query: keys whose values stay, comma-separated, globs allowed (default utm_*).",
        ),
        click.option("--progress/--no-progress", default=None, help="Progress line (default: on a terminal)."),
    ]
    for opt in reversed(options):
        fn = opt(fn)
    return fn


def engine_options(fn: Callable[..., Any]) -> Callable[..., Any]:
    """Where the work runs: in this process, or on Apache Spark."""
    options = [
        click.option(
            "--engine",
            type=click.Choice(ENGINES),
            default="local",
            show_default=True,
            help=f"Where the work runs (ingest's sources, classify's client buckets): in this process, or on Apache Spark ({INSTALL}).",
        ),
        click.option(
            "--master",
            help="With --engine spark: the Spark master URL (default local[*], or the session spark-submit started).",
        ),
        click.option(
            "--conf",
            "spark_conf",
            multiple=True,
            metavar="KEY=VALUE",
            help="With --engine spark: a Spark setting, e.g. spark.executor.memory=4g; repeat for several.",
        ),
    ]
    for opt in reversed(options):
        fn = opt(fn)
    return fn


def _ingest_opts(
    fmt: str | None,
    log_format: str | None,
    json_map: str | None,
    site: str | None,
    tz: str | None,
    time_window: str | None = None,
    ip_privacy: str | None = None,
    redact_query: bool | None = None,
    keep_query_values: str | None = None,
) -> Any:
    from trafficlens.ingest import IngestOptions

    return IngestOptions(
        format=fmt,
        log_format=log_format,
        json_map=json_map,
        site=site,
        tz=tz,
        time_window=time_window,
        ip_privacy=ip_privacy,
        redact_query=redact_query,
        keep_query_values=keep_query_values,
    )


@main.command()
@click.argument("paths", nargs=-1)
@ingest_options
@engine_options
@click.option(
    "--ranges",
    "ranges_dir",
    type=click.Path(file_okay=False),
    help="With --ip-privacy: folder of operators' IP range files, to record which ones hold each address "
    "before it is dropped (default: what `trafficlens ranges update` downloaded).",
)
@friendly
def ingest(
    paths: tuple[str, ...],
    ranges_dir: str | None,
    engine: str,
    master: str | None,
    spark_conf: tuple[str, ...],
    **kw: Any,
) -> None:
    """Read access logs into the lake's events (idempotent: re-running adds nothing).

    PATHS are files, folders, globs, or - for standard input; plain, .gz, .bz2 or .zst.

    Example:

    \b
        trafficlens ingest /var/log/nginx/access.log* --lake lake
        zcat old.log.gz | trafficlens ingest - --lake lake --site shop
    """
    from trafficlens.classify.verify import ingest_lookup
    from trafficlens.ingest import ingest as run

    lake, progress = kw.pop("lake"), kw.pop("progress")
    opts = _ingest_opts(**kw)
    opts.address_ranges = ingest_lookup(ranges_dir)
    summary = run(list(paths), lake, opts, progress=progress, engine=engine, master=master, spark_conf=spark_conf)
    _echo_summary(summary)
    _exit_if_failed(summary)


def _echo_summary(summary: Any) -> None:
    for r in summary.results:
        if r.status == "skipped":
            # The first clause says why; the list of formats after it would repeat for every file.
            click.echo(f"skipped {r.source}: {r.note.split(';')[0]}", err=True)
        elif r.status == "failed":
            click.echo(f"failed {r.source}: {r.note}", err=True)
    click.echo(f"ingested into {summary.lake}: {summary.describe()}")
    from trafficlens.ingest.privacy import Privacy

    privacy = Privacy.load(summary.lake)
    if privacy is not None and privacy.active:
        click.echo(f"privacy: {privacy.describe()}")


def _exit_if_failed(summary: Any) -> None:
    """Exit 1 when a source could not be read; what the others gave is committed by then."""
    if summary.failed:
        click.echo(f"{len(summary.failed)} of {summary.files} source(s) could not be read", err=True)
        sys.exit(1)


def classify_options(fn: Callable[..., Any]) -> Callable[..., Any]:
    """The options of `classify`, shared with `analyze`."""
    options = [
        click.option(
            "--ranges",
            "ranges_dir",
            type=click.Path(file_okay=False),
            help="Folder of operators' published IP range files (default: what "
            "`trafficlens ranges update` downloaded, if anything).",
        ),
        click.option(
            "--rdns/--no-rdns",
            default=False,
            show_default=True,
            help="Also verify claims by forward-confirmed reverse DNS (needs DNS; cached).",
        ),
        click.option(
            "--pages",
            type=click.Path(dir_okay=False),
            help="Page-type rules (YAML list of page_type/path/query/endpoint) instead of the shipped ones.",
        ),
        click.option(
            "--robots",
            multiple=True,
            help="The site's robots.txt, a folder of its versions (robots-YYYY-MM-DD.txt, each in force from that "
            "day), or its versions one by one (repeat; FILE@YYYY-MM-DD for other names): record the automated "
            "clients that fetch what the version in force disallows.",
        ),
        click.option(
            "--threats",
            "threats_file",
            type=click.Path(dir_okay=False),
            help="Threat thresholds (YAML of name: value) instead of the defaults.",
        ),
        click.option(
            "--model-dir",
            type=click.Path(file_okay=False),
            help="A behaviour model `trafficlens train --out` wrote, instead of the shipped one.",
        ),
        click.option(
            "--geo",
            multiple=True,
            type=click.Path(),
            help="ASN and country database: a .mmdb (MaxMind GeoLite2/GeoIP2, DB-IP, IPinfo), an iptoasn "
            "TSV, or a folder of them; repeat for several (default: those in the user cache's geo folder).",
        ),
        click.option(
            "--keys",
            "keys_dir",
            type=click.Path(file_okay=False),
            help="Folder of signers' key directories to check Web Bot Auth signatures against (default: what "
            "`trafficlens keys update` cached).",
        ),
        click.option(
            "--bucket-rows",
            type=click.IntRange(min=1000),
            default=ROWS_PER_BUCKET,
            show_default=True,
            help="Requests per client bucket of classify: memory per bucket grows with it (a client is never "
            "split), the number of buckets and of Spark tasks with its inverse.",
        ),
        click.option(
            "--bucket-workers",
            type=click.IntRange(min=1),
            default=1,
            show_default=True,
            help="Client buckets classify works on at once (local engine), each with its share of the cores: "
            "faster on a machine one bucket leaves cores idle on, a bucket's memory more for each.",
        ),
    ]
    for opt in reversed(options):
        fn = opt(fn)
    return fn


@main.command()
@click.option("--lake", default=default_lake, show_default=False, help=LAKE_HELP)
@classify_options
@engine_options
@click.option("--progress/--no-progress", default=None, help="Progress line (default: on a terminal).")
@friendly
def classify(
    lake: str,
    ranges_dir: str | None,
    rdns: bool,
    pages: str | None,
    robots: tuple[str, ...],
    threats_file: str | None,
    model_dir: str | None,
    geo: tuple[str, ...],
    keys_dir: str | None,
    bucket_rows: int,
    bucket_workers: int,
    engine: str,
    master: str | None,
    spark_conf: tuple[str, ...],
    progress: bool | None,
) -> None:
    """Label every request: who it is (human, crawler, scraper, agent), who runs it, and whether
    it is who it claims to be. Writes requests, sessions and clients.

    Example:

    \b
        trafficlens classify --lake lake
        trafficlens classify --lake lake --ranges ./ranges --rdns
        trafficlens classify --lake lake --model-dir ./my-model
        trafficlens classify --lake lake --engine spark --master spark://head:7077
    """
    from trafficlens.classify import classify as run

    summary = run(
        lake,
        ranges_dir=ranges_dir,
        rdns=rdns,
        progress=progress,
        pages=pages,
        robots=robots or None,
        threats=threats_file,
        model_dir=model_dir,
        geo=geo,
        keys_dir=keys_dir,
        bucket_rows=bucket_rows,
        bucket_workers=bucket_workers,
        engine=engine,
        master=master,
        spark_conf=spark_conf,
    )
    click.echo(f"classified {summary.lake}: {summary.describe()}")


@main.command()
@click.argument("paths", nargs=-1)
@ingest_options
@classify_options
@engine_options
@click.option("--top", default=10, show_default=True, type=click.IntRange(min=1), help="Rows in each top list.")
@friendly
def analyze(
    paths: tuple[str, ...],
    top: int,
    ranges_dir: str | None,
    rdns: bool,
    pages: str | None,
    robots: tuple[str, ...],
    threats_file: str | None,
    model_dir: str | None,
    geo: tuple[str, ...],
    keys_dir: str | None,
    bucket_rows: int,
    bucket_workers: int,
    engine: str,
    master: str | None,
    spark_conf: tuple[str, ...],
    **kw: Any,
) -> None:
    """Ingest logs, classify them and summarise the traffic: the main job.

    Example:

    \b
        trafficlens analyze sample_logs/
        trafficlens analyze /var/log/nginx/ --ranges ./ranges
    """
    from trafficlens.analysis import analyze as run

    lake, progress = kw.pop("lake"), kw.pop("progress")
    result = run(
        list(paths),
        lake,
        _ingest_opts(**kw),
        ranges_dir=ranges_dir,
        rdns=rdns,
        pages=pages,
        robots=robots or None,
        threats=threats_file,
        model_dir=model_dir,
        geo=geo,
        keys_dir=keys_dir,
        bucket_rows=bucket_rows,
        bucket_workers=bucket_workers,
        engine=engine,
        master=master,
        spark_conf=spark_conf,
        top=top,
        progress=progress,
    )
    _echo_summary(result.ingest)
    click.echo(f"classified: {result.classify.describe()}")
    click.echo(result.summary)
    lake_arg = "" if lake == default_lake() else f" --lake {lake}"
    click.echo(
        f"\nThe full report: trafficlens report{lake_arg} (--format html --out report.html for charts); "
        f"the dashboard: trafficlens dashboard{lake_arg}"
    )
    _exit_if_failed(result.ingest)
