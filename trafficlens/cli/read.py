"""Reading the lake and acting on it: `report`, `query`, `export`, `dashboard`, `redact`, `ranges`, `keys`."""

from __future__ import annotations

import os
import sys

import click

from trafficlens.cli.base import LAKE_HELP, default_lake, emit, friendly, main
from trafficlens.errors import TrafficlensError
from trafficlens.schema import (
    ACTOR_CLASSES,
    ALERT_FORMATS,
    EXPORT_TARGETS,
    IP_PRIVACY,
    PERIODS,
    QUERY_FORMATS,
    REPORT_FORMATS,
)


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
@click.option("--top", default=20, show_default=True, type=click.IntRange(min=1), help="Rows in the top-client lists.")
@click.option("--section", "only", multiple=True, help="Only this JSON section (repeat for several).")
@click.option(
    "--pricing",
    type=click.Path(dir_okay=False),
    help="Pay-per-crawl policy (YAML) for the pay_per_crawl section (default: the shipped one).",
)
@click.option(
    "--ai-window",
    default=300.0,
    show_default=True,
    type=click.FloatRange(min=0, min_open=True, max=86_400),
    help="Seconds after an AI assistant fetched a page within which a person landing on it, with no "
    "referrer, counts as an inferred AI referral.",
)
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
    pricing: str | None,
    ai_window: float,
    out: str | None,
) -> None:
    """Shares, AI traffic, operators, agents, trends, threats, referrals and robots.txt.

    Example:

    \b
        trafficlens report --lake trafficlens-lake
        trafficlens report --format html --by week --out report.html
        trafficlens report --format json --since 2025-10-01 --until 2025-10-31 --section ai_share
        trafficlens report --format json --section pay_per_crawl --pricing my-prices.yml
    """
    import json

    from trafficlens.report import Report
    from trafficlens.report.render import render

    with Report(
        lake,
        since=since,
        until=until,
        sites=sites,
        classes=classes,
        by=by,
        top=top,
        pricing=pricing,
        ai_window=ai_window,
    ) as rep:
        if not rep.totals()["requests"]:
            raise TrafficlensError(_nothing_matches(lake, since, until, sites, classes))
        if only:
            if fmt != "json":
                raise TrafficlensError("--section selects JSON sections: add --format json")
            text = json.dumps(rep.to_dict(only), indent=1) + "\n"
        else:
            text = render(rep, fmt)
    emit(text, out, "report")


def _nothing_matches(
    lake: str, since: str | None, until: str | None, sites: tuple[str, ...], classes: tuple[str, ...]
) -> str:
    """Why a report would be all zeros, naming the filter that excludes everything and what the lake
    holds, so that a mistyped --site or a --since beyond the logs is one fix away."""
    from trafficlens.report import explore

    bounds = explore.lake_bounds(lake)
    unknown = [s for s in sites if s not in bounds.sites]
    if unknown:
        return f"no requests for --site {unknown[0]}: the lake's sites are {', '.join(bounds.sites) or 'none'}"
    held = f"the lake holds {bounds.first} to {bounds.last} (UTC)"
    if since or until:
        chosen = " ".join(f"--{k} {v}" for k, v in (("since", since), ("until", until)) if v)
        return f"no requests in {chosen}: {held}"
    if classes:
        return f"no {' or '.join(classes)} requests in the lake: leave out --class to see the others"
    return f"no requests match these filters: {held}"


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
    _warn_unclassified(lake, sql)


def _warn_unclassified(lake: str, sql: str) -> None:
    """A query that reads a table classify has not written yet gets no rows (or counts of zero):
    say so, and exit 1, so that a scheduled query does not read "nothing happened" from a lake
    that was only ingested."""
    import re

    from trafficlens.store import Lake

    store = Lake(lake)
    missing = [
        t for t in ("requests", "sessions", "clients") if re.search(rf"\b{t}\b", sql, re.I) and not store.has_table(t)
    ]
    if missing:
        click.echo(
            f"warning: the lake has no {', '.join(missing)} yet (no classify run): "
            f"`trafficlens classify --lake {lake}` labels the ingested events",
            err=True,
        )
        sys.exit(1)


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
    emit(text, out, f"{target} rules")


@main.command()
@click.option("--lake", default=default_lake, show_default=False, help=LAKE_HELP)
@click.option(
    "--port", default=8501, show_default=True, type=click.IntRange(1, 65535), help="Port to serve the dashboard on."
)
@click.option("--host", default="127.0.0.1", show_default=True, help="Address to listen on (0.0.0.0: every interface).")
@click.option(
    "--pricing",
    type=click.Path(dir_okay=False),
    help="Pay-per-crawl policy (YAML) for the pay-per-crawl page (default: the shipped one).",
)
@friendly
def dashboard(lake: str, port: int, host: str, pricing: str | None) -> None:
    """Open the Streamlit dashboard on a lake.

    Example:

    \b
        trafficlens dashboard --lake trafficlens-lake --port 8501
    """
    from importlib import resources
    from pathlib import Path

    # The dashboard ships inside the package (trafficlens.dashboards), wherever it is installed.
    app = Path(str(resources.files("trafficlens.dashboards") / "app.py"))
    if not app.exists():
        raise TrafficlensError(f"dashboard app not found at {app}: reinstall trafficlens")
    from trafficlens.store import Lake

    Lake(lake)  # no lake there: say so here rather than in a page the browser opens
    from trafficlens.store import URI

    env = {**os.environ, "TRAFFICLENS_LAKE": lake if URI.match(lake) else str(Path(lake).resolve())}
    if pricing:
        from trafficlens.report.replay import Pricing

        Pricing.load(pricing)  # a bad file is said here, not in the page
        env["TRAFFICLENS_PRICING"] = str(Path(pricing).resolve())
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
        "--server.fileWatcherType",
        "none",
    ]
    click.echo(f"dashboard on http://{host}:{port}/ for {lake} (Ctrl-C stops it)")
    sys.stdout.flush()
    # Streamlit becomes this process (same pid), so whatever ends `trafficlens dashboard` (Ctrl-C,
    # a service manager's SIGTERM, a closed terminal's SIGHUP) ends the server: no child is left
    # listening on the port.
    try:
        os.execve(sys.executable, cmd, env)
    except OSError as e:
        raise TrafficlensError(f"cannot start Streamlit ({e.strerror or e}): reinstall trafficlens") from None


@main.command()
@click.option("--lake", default=default_lake, show_default=False, help=LAKE_HELP)
@click.option("--before", required=True, metavar="DAY", help="First day to keep as it is (YYYY-MM-DD, UTC).")
@click.option(
    "--ip-privacy",
    type=click.Choice([c for c in IP_PRIVACY if c != "off"]),
    help="Pseudonymise addresses: truncate or hash (default: the lake's choice at ingest).",
)
@click.option(
    "--redact-query/--keep-query", default=None, help="Drop query-string values (default: the lake's choice)."
)
@click.option("--keep-query-values", metavar="KEYS", help="Keys whose values stay (default utm_*).")
@click.option(
    "--ranges",
    "ranges_dir",
    type=click.Path(file_okay=False),
    help="Operators' IP range files, recorded for each address before it is dropped (default: the "
    "`ranges update` cache).",
)
@friendly
def redact(
    lake: str,
    before: str,
    ip_privacy: str | None,
    redact_query: bool | None,
    keep_query_values: str | None,
    ranges_dir: str | None,
) -> None:
    """Pseudonymise old traffic: addresses and query values in every table before DAY, as the
    privacy options of ingest would have. Later days are left as they are.

    Example:

    \b
        trafficlens redact --lake lake --before 2025-01-01 --ip-privacy hash --redact-query
    """
    from trafficlens.report.redact import redact as run

    summary = run(
        lake,
        before,
        ip_privacy=ip_privacy,
        redact_query=redact_query,
        keep_query_values=keep_query_values,
        ranges_dir=ranges_dir,
    )
    click.echo(summary.describe())


@main.group()
def ranges() -> None:
    """Operators' published IP ranges, used to verify claimed crawler identities."""


@ranges.command(name="update")
@click.option("--dir", "dest", type=click.Path(file_okay=False), help="Folder to write (default: the user cache).")
@click.option(
    "--timeout",
    default=20.0,
    show_default=True,
    type=click.FloatRange(min=0, min_open=True),
    help="Seconds per download.",
)
@friendly
def ranges_update(dest: str | None, timeout: float) -> None:
    """Download the range files (OpenAI, Google, Bing, Perplexity, Apple, Common Crawl, ...), and
    the cloud and hosting providers' (AWS, Google Cloud, Oracle, DigitalOcean, Linode, Cloudflare, ...).

    classify then uses them by default; offline, nothing changes.

    Example:

    \b
        trafficlens ranges update
        trafficlens ranges update --dir ./ranges   # then: trafficlens classify --ranges ./ranges
    """
    from pathlib import Path

    from trafficlens.classify.verify import update_hosting, update_ranges
    from trafficlens.errors import RangesDownloadError

    result = update_ranges(Path(dest) if dest else None, timeout=timeout)
    click.echo(result.describe())
    try:
        click.echo(update_hosting(result.dest, timeout=timeout).describe())
    except RangesDownloadError as e:  # the operators' files are in: say what is missing, do not fail
        click.echo(f"hosting range files: {e}", err=True)


@main.group()
def keys() -> None:
    """Key directories of signed agents (Web Bot Auth), used to verify logged HTTP message signatures."""


@keys.command(name="update")
@click.option(
    "--host",
    "hosts",
    multiple=True,
    help="A signer's host whose directory to fetch (repeat; default: every signed agent the catalogue knows).",
)
@click.option("--lake", help="Also fetch the directories of the Signature-Agent hosts this lake's logs name.")
@click.option("--dir", "dest", type=click.Path(file_okay=False), help="Folder to write (default: the user cache).")
@click.option(
    "--timeout",
    default=20.0,
    show_default=True,
    type=click.FloatRange(min=0, min_open=True),
    help="Seconds per download.",
)
@friendly
def keys_update(hosts: tuple[str, ...], lake: str | None, dest: str | None, timeout: float) -> None:
    """Fetch each signer's /.well-known/http-message-signatures-directory and cache it with its date.

    classify then checks the Signature headers the logs recorded against them, offline.

    Example:

    \b
        trafficlens keys update
        trafficlens keys update --host chatgpt.com --dir ./keys
        trafficlens keys update --lake trafficlens-lake
    """
    from trafficlens.classify.verify import update_keys
    from trafficlens.classify.verify.signatures import signer_hosts

    wanted = list(hosts)
    if lake is not None:
        from trafficlens.report.query import run_sql

        seen = run_sql(lake, "SELECT DISTINCT signature_agent FROM events WHERE signature_agent IS NOT NULL")
        wanted += [v for v in seen.to_series().to_list() if v]
        wanted += list(signer_hosts()) if not hosts else []
    result = update_keys(wanted, dest, timeout=timeout)
    click.echo(result.describe())


@main.command()
@click.option("--lake", default=default_lake, show_default=False, help=LAKE_HELP)
@click.option("--since", help="First day to look at (YYYY-MM-DD, UTC; default: the lake's last day).")
@click.option(
    "--config", type=click.Path(dir_okay=False), help="Thresholds (YAML, the names of the shipped alerts.yml)."
)
@click.option("--format", "fmt", default="text", show_default=True, type=click.Choice(ALERT_FORMATS))
@click.option("--no-record", is_flag=True, help="Do not record what fired in the lake's alerts table.")
@click.option("--out", type=click.Path(dir_okay=False), help="Write to this file instead of the terminal.")
@friendly
def alerts(lake: str, since: str | None, config: str | None, fmt: str, no_record: bool, out: str | None) -> None:
    """What changed: new agents, volume surges, new spoofing, threat surges, identity checks off.

    The days from --since to the lake's end are compared with the days of data before them.
    Exits 1 when an alert fires (cron mails the output), 0 when none does.

    Example:

    \b
        trafficlens alerts --lake trafficlens-lake
        trafficlens alerts --since 2025-10-10 --format json --config my-alerts.yml
    """
    import datetime as dt
    import json

    from trafficlens.report.alerts import run_alerts
    from trafficlens.report.core import jsonable

    day = None
    if since:
        try:
            day = dt.date.fromisoformat(since)
        except ValueError:
            raise TrafficlensError(f"--since {since!r} is not a day: give YYYY-MM-DD") from None
    found, scope = run_alerts(lake, day, config, record=not no_record)
    if fmt == "json":
        doc = {"days": scope["days"], "baseline_days": len(scope["baseline_days"]), "alerts": found}
        text = json.dumps(jsonable(doc), indent=1) + "\n"
    else:
        days = scope["days"]
        looked = f"{days[0]}" + (f" to {days[-1]}" if len(days) > 1 else "") if days else "no day"
        base = f"{len(scope['baseline_days'])} day(s) of baseline"
        if days and not found.height and len(scope["baseline_days"]) == 0:
            head = f"no alerts for {looked}: no days of data before it to compare with"
        else:
            head = (
                f"{found.height} alert(s) for {looked} against {base}"
                if found.height
                else f"no alerts for {looked} ({base})"
            )
        width = max([len(k) for k in found["kind"]] + [0])
        lines = [f"  {k:<{width}}  {m}" for k, m in found.select("kind", "message").iter_rows()]
        text = "\n".join([head, *lines]) + "\n"
    emit(text, out, "alerts")
    if found.height:
        sys.exit(1)
