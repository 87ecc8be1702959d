"""Simulated traffic and the behaviour model: `simulate`, `evaluate`, `train`."""

from __future__ import annotations

import click

from trafficlens.cli.base import LAKE_HELP, default_lake, friendly, main
from trafficlens.schema import ESTIMATORS, SIMULATED_FORMATS, SITE_KINDS, SITE_LAYOUTS


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
@click.option("--days", default=7, show_default=True, type=click.IntRange(min=1), help="Days of traffic.")
@click.option("--seed", default=0, show_default=True, help="Random seed (same seed, same bytes).")
@click.option(
    "--scale",
    default=1.0,
    show_default=True,
    type=click.FloatRange(min=0, min_open=True),
    help="Volume multiplier (1 is about 120,000 lines a week).",
)
@click.option("--site-kind", default="shop", show_default=True, type=click.Choice(SITE_KINDS))
@click.option(
    "--site-layout",
    default="origin",
    show_default=True,
    type=click.Choice(SITE_LAYOUTS),
    help="Where the assets come from: the origin, a CDN (none in the log), or a single-page app.",
)
@click.option(
    "--families",
    help="Kinds of clients, comma-separated (human:tab_opener,bot:paced_crawler; human or bot for all "
    "of a kind; -NAME leaves one out). Default: all.",
)
@click.option(
    "--ranges-out",
    type=click.Path(file_okay=False),
    help="Also write the operators' range files the simulated bots come from (for --ranges).",
)
@click.option(
    "--incidents",
    is_flag=True,
    help="On the last day: a new AI crawler, a crawler's volume surging, new spoofers, a credential-stuffing "
    "surge, GPTBot from unpublished addresses, an assistant's fetcher sweeping the site (for trafficlens alerts "
    "and the report's purpose_check).",
)
@click.option(
    "--robots-out",
    type=click.Path(file_okay=False),
    help="Also write the site's robots.txt versions (robots-YYYY-MM-DD.txt, for classify --robots): a change in "
    "the middle of the run, which the crawlers honouring robots.txt obey once they read it again.",
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
    site_layout: str,
    families: str | None,
    ranges_out: str | None,
    incidents: bool,
    robots_out: str | None,
    progress: bool | None,
) -> None:
    """Write labelled synthetic traffic (humans, AI crawlers and agents, scrapers, attacks) and its
    truth file (OUT.truth.parquet), for evaluation and training.

    Example:

    \b
        trafficlens simulate --out sim.log --days 14 --seed 7 --ranges-out sim-ranges
        trafficlens analyze sim.log --lake sim-lake --ranges sim-ranges
        trafficlens evaluate --lake sim-lake --truth sim.log.truth.parquet
        trafficlens simulate --out tabs.log --families human:tab_opener --site-layout cdn
    """
    from trafficlens.simulate import simulate as run

    result = run(
        out,
        fmt=fmt,
        days=days,
        seed=seed,
        scale=scale,
        site_kind=site_kind,
        ranges_out=ranges_out,
        progress=progress,
        families=families,
        site_layout=site_layout,
        incidents=incidents,
        robots_out=robots_out,
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
@click.option(
    "--days",
    default=7,
    show_default=True,
    type=click.IntRange(min=1),
    help="Days of simulated traffic per training log.",
)
@click.option(
    "--scale",
    default=1.0,
    show_default=True,
    type=click.FloatRange(min=0, min_open=True),
    help="Volume of each training log.",
)
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

    if out:
        Path(out).mkdir(parents=True, exist_ok=True)  # a folder that cannot be made fails now, not after training
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
