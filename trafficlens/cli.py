"""The `trafficlens` command. Commands parse options, call one library function, print a summary."""

from __future__ import annotations

import functools
import os
import sys
from collections.abc import Callable
from typing import Any

import click

from trafficlens import __version__
from trafficlens.errors import TrafficlensError
from trafficlens.ingest.formats import FORMAT_NAMES
from trafficlens.schema import (
    ACTOR_CLASSES,
    ESTIMATORS,
    EXPORT_TARGETS,
    PERIODS,
    QUERY_FORMATS,
    REPORT_FORMATS,
    SIMULATED_FORMATS,
    SITE_KINDS,
)
from trafficlens.store import DEFAULT_LAKE

LAKE_HELP = f"Lake folder (default: $TRAFFICLENS_LAKE or ./{DEFAULT_LAKE})."


def default_lake() -> str:
    return os.environ.get("TRAFFICLENS_LAKE") or DEFAULT_LAKE


def friendly(fn: Callable[..., Any]) -> Callable[..., Any]:
    """Errors a user can cause become one line, never a traceback."""

    @functools.wraps(fn)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        try:
            return fn(*args, **kwargs)
        except TrafficlensError as e:
            raise click.ClickException(str(e)) from None
        except KeyboardInterrupt:
            click.echo("interrupted; the lake is as it was before this run", err=True)
            sys.exit(130)
        except BrokenPipeError:
            sys.exit(0)

    return wrapper


def ingest_options(fn: Callable[..., Any]) -> Callable[..., Any]:
    """The options of `ingest`, shared with `analyze`."""
    options = [
        click.option("--lake", default=default_lake, show_default=False, help=LAKE_HELP),
        click.option("--format", "fmt", help=f"Log format, if not auto-detected: {', '.join(FORMAT_NAMES)}."),
        click.option("--log-format", help="A custom nginx log_format or Apache LogFormat string."),
        click.option("--json-map", help="JSON lines: column=$.path pairs, e.g. 'user_agent=$.ua,ts=$.time'."),
        click.option("--site", help="Site name for these logs (default: the virtual host, or 'default')."),
        click.option("--tz", help="Time zone of timestamps that carry no offset (default UTC), e.g. Europe/Paris."),
        click.option("--progress/--no-progress", default=None, help="Progress line (default: on a terminal)."),
    ]
    for opt in reversed(options):
        fn = opt(fn)
    return fn


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(__version__, prog_name="trafficlens")
def main() -> None:
    """trafficlens: how much of a site's traffic is human, crawler, scraper or AI agent, who runs
    it, whether it is who it claims to be, and which of it is malicious, from its access logs."""


def _ingest_opts(
    fmt: str | None, log_format: str | None, json_map: str | None, site: str | None, tz: str | None
) -> Any:
    from trafficlens.ingest import IngestOptions

    return IngestOptions(format=fmt, log_format=log_format, json_map=json_map, site=site, tz=tz)


@main.command()
@click.argument("paths", nargs=-1)
@ingest_options
@friendly
def ingest(paths: tuple[str, ...], **kw: Any) -> None:
    """Read access logs into the lake's events (idempotent: re-running adds nothing).

    PATHS are files, folders, globs, or - for standard input; plain, .gz, .bz2 or .zst.

    Example:

    \b
        trafficlens ingest /var/log/nginx/access.log* --lake lake
        zcat old.log.gz | trafficlens ingest - --lake lake --site shop
    """
    from trafficlens.ingest import ingest as run

    lake, progress = kw.pop("lake"), kw.pop("progress")
    summary = run(list(paths), lake, _ingest_opts(**kw), progress=progress)
    _echo_summary(summary)


def _echo_summary(summary: Any) -> None:
    for r in summary.results:
        if r.status == "skipped":
            # The first clause says why; the list of formats after it would repeat for every file.
            click.echo(f"skipped {r.source}: {r.note.split(';')[0]}", err=True)
    click.echo(f"ingested into {summary.lake}: {summary.describe()}")


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
            type=click.Path(dir_okay=False),
            help="The site's robots.txt: record the automated clients that fetch what it disallows.",
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
    ]
    for opt in reversed(options):
        fn = opt(fn)
    return fn


@main.command()
@click.option("--lake", default=default_lake, show_default=False, help=LAKE_HELP)
@classify_options
@click.option("--progress/--no-progress", default=None, help="Progress line (default: on a terminal).")
@friendly
def classify(
    lake: str,
    ranges_dir: str | None,
    rdns: bool,
    pages: str | None,
    robots: str | None,
    threats_file: str | None,
    model_dir: str | None,
    progress: bool | None,
) -> None:
    """Label every request: who it is (human, crawler, scraper, agent), who runs it, and whether
    it is who it claims to be. Writes requests, sessions and clients.

    Example:

    \b
        trafficlens classify --lake lake
        trafficlens classify --lake lake --ranges ./ranges --rdns
        trafficlens classify --lake lake --model-dir ./my-model
    """
    from trafficlens.classify import classify as run

    summary = run(
        lake,
        ranges_dir=ranges_dir,
        rdns=rdns,
        progress=progress,
        pages=pages,
        robots=robots,
        threats=threats_file,
        model_dir=model_dir,
    )
    click.echo(f"classified {summary.lake}: {summary.describe()}")


@main.command()
@click.argument("paths", nargs=-1)
@ingest_options
@classify_options
@click.option("--top", default=10, show_default=True, help="Rows in each top list.")
@friendly
def analyze(
    paths: tuple[str, ...],
    top: int,
    ranges_dir: str | None,
    rdns: bool,
    pages: str | None,
    robots: str | None,
    threats_file: str | None,
    model_dir: str | None,
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
        robots=robots,
        threats=threats_file,
        model_dir=model_dir,
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


@main.command()
@click.option("--out", required=True, type=click.Path(dir_okay=False), help="Log file to write (.gz for gzip).")
@click.option(
    "--format",
    "fmt",
    default="combined",
    show_default=True,
    type=click.Choice(SIMULATED_FORMATS),
    help="Log format to write.",
)
@click.option("--days", default=7, show_default=True, help="Days of traffic.")
@click.option("--seed", default=0, show_default=True, help="Random seed (same seed, same bytes).")
@click.option("--scale", default=1.0, show_default=True, help="Volume multiplier (1 is about 120,000 lines a week).")
@click.option("--site-kind", default="shop", show_default=True, type=click.Choice(SITE_KINDS))
@click.option(
    "--ranges-out",
    type=click.Path(file_okay=False),
    help="Also write the operators' range files the simulated bots come from (for --ranges).",
)
@click.option("--progress/--no-progress", default=None, help="Progress line (default: on a terminal).")
@friendly
def simulate(
    out: str,
    fmt: str,
    days: int,
    seed: int,
    scale: float,
    site_kind: str,
    ranges_out: str | None,
    progress: bool | None,
) -> None:
    """Write labelled synthetic traffic (humans, AI crawlers and agents, scrapers, attacks) and its
    truth file (OUT.truth.parquet), for evaluation and training.

    Example:

    \b
        trafficlens simulate --out sim.log --days 14 --seed 7 --ranges-out sim-ranges
        trafficlens analyze sim.log --lake sim-lake --ranges sim-ranges
        trafficlens evaluate --lake sim-lake --truth sim.log.truth.parquet
    """
    from trafficlens.simulate import simulate as run

    result = run(
        out, fmt=fmt, days=days, seed=seed, scale=scale, site_kind=site_kind, ranges_out=ranges_out, progress=progress
    )
    click.echo(result.describe())


@main.command()
@click.option("--lake", default=default_lake, show_default=False, help=LAKE_HELP)
@click.option("--truth", required=True, type=click.Path(dir_okay=False), help="Truth file (LOG.truth.parquet).")
@click.option(
    "--log",
    "log_path",
    type=click.Path(dir_okay=False),
    help="The log the truth describes (default: the truth file's name without .truth.parquet).",
)
@click.option("--json", "as_json", is_flag=True, help="Print the scores as JSON.")
@friendly
def evaluate(lake: str, truth: str, log_path: str | None, as_json: bool) -> None:
    """Compare the lake's labels with ground truth: precision, recall, F1 and confusion matrices
    for actor_class, ai_driven and malicious, per request and per client.

    Example:

    \b
        trafficlens evaluate --lake sim-lake --truth sim.log.truth.parquet
    """
    from trafficlens.report.evaluate import evaluate as run

    result = run(lake, truth, log_path)
    click.echo(result.to_json() if as_json else result.describe())


@main.command()
@click.option("--out", type=click.Path(file_okay=False), help="Folder for the model (default: the package's).")
@click.option("--days", default=7, show_default=True, help="Days of simulated traffic per training log.")
@click.option("--scale", default=1.0, show_default=True, help="Volume of each training log.")
@click.option(
    "--model",
    "only",
    type=click.Choice(ESTIMATORS),
    help="Fit only this estimator (default: compare all, keep the best; a near tie goes to the random forest).",
)
@click.option("--progress/--no-progress", default=None, help="Progress line (default: on a terminal).")
@friendly
def train(out: str | None, days: int, scale: float, only: str | None, progress: bool | None) -> None:
    """Retrain the behaviour model on freshly simulated labelled traffic.

    Example:

    \b
        trafficlens train
        trafficlens train --out ./my-model --scale 2
    """
    from pathlib import Path

    from trafficlens.classify.training import train as run

    meta = run(Path(out) if out else None, days=days, scale=scale, progress=progress, only=only)
    cv = meta["cross_validation"]["scores"]
    scores = ", ".join(f"{k} {v['macro_f1']:.3f}" for k, v in cv.items())
    click.echo(f"kept {meta['model']} ({meta['clients']:,} clients; cross-validated macro-F1: {scores})")
    nav = meta["navigation"]
    ncv = nav["cross_validation"]
    click.echo(
        f"navigation model: {nav['visits']:,} browser visits of {nav['min_pages']}+ pages; at "
        f"{nav['threshold']} it flags {ncv['human_flagged']:.1%} of people's and finds "
        f"{ncv['automated_found']:.1%} of automated ones (out of fold)"
    )


def _emit(text: str, out: str | None, what: str) -> None:
    """Text to a file (saying so on stderr) or to the terminal."""
    if out:
        from pathlib import Path

        Path(out).write_text(text, encoding="utf-8")
        click.echo(f"{what} written to {out}", err=True)
    else:
        click.echo(text, nl=False)


@main.command()
@click.option("--lake", default=default_lake, show_default=False, help=LAKE_HELP)
@click.option(
    "--format", "fmt", default="table", show_default=True, type=click.Choice(REPORT_FORMATS), help="Output format."
)
@click.option("--since", help="First day (YYYY-MM-DD, inclusive) or time.")
@click.option("--until", help="Last day (YYYY-MM-DD, inclusive) or time.")
@click.option("--site", "sites", multiple=True, help="Only this site (repeat for several).")
@click.option(
    "--class", "classes", multiple=True, type=click.Choice(ACTOR_CLASSES), help="Only this class (repeat for several)."
)
@click.option("--by", default="day", show_default=True, type=click.Choice(PERIODS), help="Trend period.")
@click.option("--top", default=20, show_default=True, help="Rows in the top-client lists.")
@click.option("--section", "only", multiple=True, help="Only this JSON section (repeat for several).")
@click.option("--out", type=click.Path(dir_okay=False), help="Write to this file instead of the terminal.")
@friendly
def report(
    lake: str,
    fmt: str,
    since: str | None,
    until: str | None,
    sites: tuple[str, ...],
    classes: tuple[str, ...],
    by: str,
    top: int,
    only: tuple[str, ...],
    out: str | None,
) -> None:
    """Shares, AI traffic, operators, agents, trends, threats, referrals and robots.txt.

    Example:

    \b
        trafficlens report --lake trafficlens-lake
        trafficlens report --format html --by week --out report.html
        trafficlens report --format json --since 2025-10-01 --until 2025-10-31 --section ai_share
    """
    import json

    from trafficlens.report import Report
    from trafficlens.report.render import render

    with Report(lake, since=since, until=until, sites=sites, classes=classes, by=by, top=top) as rep:
        if only:
            if fmt != "json":
                raise TrafficlensError("--section selects JSON sections: add --format json")
            text = json.dumps(rep.to_dict(only), indent=1) + "\n"
        else:
            text = render(rep, fmt)
    _emit(text, out, "report")


@main.command()
@click.argument("sql", required=False)
@click.option("--lake", default=default_lake, show_default=False, help=LAKE_HELP)
@click.option(
    "--format",
    "fmt",
    default="table",
    show_default=True,
    type=click.Choice(QUERY_FORMATS),
    help="Output format (json: one object a line).",
)
@click.option("--out", type=click.Path(dir_okay=False), help="Write to this file (needed for parquet).")
@friendly
def query(sql: str | None, lake: str, fmt: str, out: str | None) -> None:
    """Run SQL on the lake's views (events, requests, sessions, clients, rejects, manifest);
    without SQL, open an interactive prompt.

    Example:

    \b
        trafficlens query "SELECT operator, count(*) FROM requests WHERE ai_driven GROUP BY 1 ORDER BY 2 DESC"
        trafficlens query --format csv "SELECT * FROM clients WHERE identity = 'spoofed'" > spoofed.csv
        trafficlens query --lake trafficlens-lake
    """
    from trafficlens.report.query import repl, run_sql, write_result

    if sql is None or sql.strip() == "-":
        if sql is None and sys.stdin.isatty():
            repl(lake)
            return
        sql = sys.stdin.read()
    write_result(run_sql(lake, sql), fmt, out)


@main.command(name="export")
@click.argument("target", type=click.Choice(EXPORT_TARGETS))
@click.option("--lake", default=default_lake, show_default=False, help=LAKE_HELP)
@click.option(
    "--policy",
    "policies",
    multiple=True,
    help="block-KIND or allow-KIND (repeat, or comma-separate); KIND: ai, ai-training, ai-search, "
    "ai-assistant, ai-agent, search-engine, seo, archive, monitoring, preview, feed, "
    "security-scanner, tool, all. Default: block-ai-training,allow-ai-search,allow-ai-assistant.",
)
@click.option("--all-known", is_flag=True, help="Every catalogue agent the policies name, not only those seen.")
@click.option(
    "--enforce",
    is_flag=True,
    help="Server rules also refuse every agent the policies block "
    "(by default they refuse robots.txt violators and spoofed addresses).",
)
@click.option("--out", type=click.Path(dir_okay=False), help="Write to this file instead of the terminal.")
@friendly
def export_cmd(
    target: str, lake: str, policies: tuple[str, ...], all_known: bool, enforce: bool, out: str | None
) -> None:
    """Write robots.txt groups or server block rules from what the lake saw.

    Example:

    \b
        trafficlens export robots --policy block-ai-training --policy allow-ai-search
        trafficlens export nginx --enforce --out /etc/nginx/conf.d/trafficlens.conf
    """
    from trafficlens.report.export import export

    text = export(lake, target, policies or None, all_known=all_known, enforce=enforce)
    _emit(text, out, f"{target} rules")


@main.command()
@click.option("--lake", default=default_lake, show_default=False, help=LAKE_HELP)
@click.option("--port", default=8501, show_default=True, help="Port to serve the dashboard on.")
@click.option("--host", default="localhost", show_default=True, help="Address to listen on.")
@friendly
def dashboard(lake: str, port: int, host: str) -> None:
    """Open the Streamlit dashboard on a lake.

    Example:

    \b
        trafficlens dashboard --lake trafficlens-lake --port 8501
    """
    import subprocess
    from importlib import resources
    from pathlib import Path

    # The dashboard ships inside the package (trafficlens.dashboards), wherever it is installed.
    app = Path(str(resources.files("trafficlens.dashboards") / "app.py"))
    if not app.exists():
        raise TrafficlensError(f"dashboard app not found at {app}: reinstall trafficlens")
    env = {**os.environ, "TRAFFICLENS_LAKE": str(Path(lake).resolve())}
    cmd = [
        sys.executable,
        "-m",
        "streamlit",
        "run",
        str(app),
        "--server.port",
        str(port),
        "--server.address",
        host,
        "--server.headless",
        "true",
        "--browser.gatherUsageStats",
        "false",
        "--client.toolbarMode",
        "viewer",
    ]
    click.echo(f"dashboard on http://{host}:{port}/ for {lake} (Ctrl-C stops it)")
    try:
        sys.exit(subprocess.call(cmd, env=env))
    except KeyboardInterrupt:
        sys.exit(0)


@main.group()
def ranges() -> None:
    """Operators' published IP ranges, used to verify claimed crawler identities."""


@ranges.command(name="update")
@click.option("--dir", "dest", type=click.Path(file_okay=False), help="Folder to write (default: the user cache).")
@click.option("--timeout", default=20.0, show_default=True, help="Seconds per download.")
@friendly
def ranges_update(dest: str | None, timeout: float) -> None:
    """Download the range files (OpenAI, Google, Bing, Perplexity, Apple, Common Crawl, ...).

    classify then uses them by default; offline, nothing changes.

    Example:

    \b
        trafficlens ranges update
        trafficlens ranges update --dir ./ranges   # then: trafficlens classify --ranges ./ranges
    """
    from pathlib import Path

    from trafficlens.classify.verify import update_ranges

    result = update_ranges(Path(dest) if dest else None, timeout=timeout)
    click.echo(result.describe())


if __name__ == "__main__":
    main()
