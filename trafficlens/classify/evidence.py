"""Evidence that a browser is automated, by family, and the decision rule that reads it.

A browser user agent is called automated only on evidence a person cannot produce by browsing
differently, or on two independent kinds of evidence agreeing (DESIGN.md, "Evidence and
confidence"). A model's judgement of style (how a visit moves, what it fetches) is one kind of
evidence among others and never decides alone: people browse in more ways than any training set
holds (tabs, "next" links, search landings, apps, caches, CDNs, offices behind one address).

Families, each with a strength in [0, 1] and its reasons:
- `timing` (decisive): no page read for longer than a few seconds over many page views (fewer
  seconds over fewer of them); page views at a metronome's regularity (on a single-page app, its
  screens: the routes its API calls name as their referrer, each first shown); a sign-up form
  submitted within two seconds of loading it.
- `coverage` (decisive): more distinct pages in one day than a reader views, records read from
  the site's API without a page counted with them.
- `protocol` (decisive): one visit switching between HTTP/1.0 and a later version (a proxy
  rewrites every request it carries alike; two programs sharing a user agent do not).
  (supporting): HTTP/1.0 from a browser user agent where the site's browsers speak a later one
  (people behind an old proxy do send it, so it only supports).
- `assets` (supporting): many page views and not one asset or favicon, on a site whose own
  visitors load them (where nobody's assets reach the log, a CDN serves them, and their absence
  says nothing).
- `forms` (supporting): a form posted without its page having been loaded, where the site serves
  that page to its visitors, naming no page of the site (a person's address may change between
  the two, and then the post names the form's page, as a single-page app's does; so it only
  supports);
  a payment posted within two seconds of loading its page (a card the site keeps is paid with one
  click, so it only supports).
- `style` (supporting): the behaviour models' judgement, the navigation model's read against the
  client's user-agent cohort. It decides only where both models, which read different things
  (the main model every feature, the navigation model only how a visit moves from page to page),
  are sure together: a style one model alone sees in people is the failure this rule exists for.
  As one of two families agreeing it is the main model's reading alone: the navigation model's
  raises the score but is not counted (it is the style that failed on people, and people behind
  a VPN or an old proxy carry a second family through nothing they do); nor is the main model's
  for a client of one request, which has no style to read.
- `network` (supporting): an address in a hosting provider's published ranges (a data centre, not
  a home or mobile line). People reach sites from clouds too (VPNs, remote desktops, relays), so
  it only supports.
Attacks and abuse (the threat layer) and network evidence (operators' ranges) decide on their own,
in their own layers.

`automation_score` combines the families (noisy-or): a client left human with a high score is
"likely automated", shown beside the confident shares, never moved into them.
"""

from __future__ import annotations

from dataclasses import dataclass

import polars as pl

from trafficlens.classify.verify.hosting import hosting_reason
from trafficlens.schema import AUTOMATED_THREATS, STR_LIST


@dataclass(frozen=True)
class EvidenceConfig:
    """Thresholds of the evidence families, each set against the most extreme people measured
    (benchmarks/eval_behaviour.py's families), not the average."""

    # No reading: people's time on a page follows a Weibull with shape below 1 and a scale of
    # 3-60 s [Liu10]. For the fastest of them (scale 3 s, shape 0.5-0.9, 0.3-1.5 s for a page to
    # load, times to the second), every gap of a visit stays under 5 s in 1-2% of visits of 12
    # page views, 0.2-0.4% of 16 and under 0.1% from 20; under 2.5 s (2 s in a log's seconds) in
    # under 0.1% from 12. So: 11 gaps all under 2.5 s, or 19 all under 5 s (tests/test_behaviour.py
    # draws those readers). Gaps, not page views: pages opened in tabs, or a single-page app's
    # document loads, come in bursts a second apart with the reading between visits.
    no_reading_gaps: int = 11
    no_reading_max_gap_s: float = 2.5
    skimming_gaps: int = 19
    skimming_max_gap_s: float = 5.0
    # A metronome: people's page gaps vary more than their mean (CV > 1 for a Weibull of shape
    # < 1); a scheduler's sleep varies little. Over 11 gaps, below 0.15 is no person's.
    metronome_gaps: int = 11
    metronome_cv: float = 0.15
    # Filling in a sign-up form takes people well over two seconds, autofill included. A payment
    # too, unless the site keeps the card: then one click pays, and it only supports.
    form_fill_s: float = 2.0
    quick_pay_strength: float = 0.8
    # Distinct pages, and API records read without a page (no referrer: an app's own calls name
    # its page), fetched in one day: heavy readers of a news site view about a hundred pages. An
    # app's calls are not counted: colleagues behind one proxy read over 500 records a day of an
    # app between them, each once.
    coverage_views_per_day: int = 500
    # Assets: the site serves them to its own people when this share of its multi-page browser
    # visitors loads at least one; then a client of this many page views without any stands out.
    asset_norm_min: float = 0.6
    asset_min_pages: int = 10
    # HTTP/1.0 says something only where most of the site's browser requests are of a later
    # version: a server behind a reverse proxy that speaks HTTP/1.0 to it logs 1.0 for everyone.
    http10_site_max: float = 0.5
    http10_strength: float = 0.6
    # An address in a hosting provider's ranges: how strongly it supports.
    hosting_strength: float = 0.7
    # A supporting family counts towards "two agree" from this strength.
    support_min: float = 0.6
    # Style counts towards "two agree" only for a client of this many requests: a single request
    # shows nothing of how a client browses, and the main model's reading of it is the share of
    # such clients automated in training (most one-request clients are), not evidence about this
    # one. A person landing once through an old proxy or from a VPN would otherwise be a scraper.
    style_min_requests: int = 2
    # A blind form post: how strongly it supports (a changed address explains some).
    blind_post_strength: float = 0.8
    # Both behaviour models at least this sure: the lowest level at which no held-out family of
    # people (a model trained without it, every site layout) had a client flagged; at 0.6, 0.5% of
    # fast skimmers were (benchmarks/eval_behaviour.py, leave-one-family-out).
    models_agree: float = 0.7


DEFAULT = EvidenceConfig()
DECISIVE = 0.99
# A client left human with an automation_score from this on is "likely automated": reported beside
# the confident shares, never moved into them.
LIKELY_AUTOMATED = 0.5
# The supporting families by the reasons they leave (regexes, RE2), so that a report can say what
# raised the scores of the band: style where either behaviour model leans to automation (its class
# is not human, or human at one half or less as rounded; the navigation model is named from 0.5),
# the others by their own reasons (`gather`; a hosting provider's address, `hosting_reason`).
SUPPORT_REASONS: dict[str, str] = {
    "style": r"^behaviour:(navigation:|model:(crawler|scraper|agent):|model:human:0(\.[0-4]|\.5$|$))",
    "assets": r"^evidence:assets:",
    "forms": r"^evidence:forms:",
    "protocol": r"^evidence:protocol:http10",
    "network": r"^ip:hosting:",
}


def site_norm_parts(clients: pl.DataFrame) -> pl.DataFrame:
    """What `site_norms` is made of, per site, as sums that add up over any split of the clients
    (classify's buckets): `loaded` and `many`, of the browser visitors with three or more page
    views those that loaded any asset or favicon and all of them; `http10` and `proto`, their
    HTTP/1.0 requests and all their requests of a known protocol."""
    browsers = clients.filter(pl.col("identity") == "none")
    many = pl.col("pages") >= 3
    loaded = (pl.col("assets") > 0) | (pl.col("favicon") > 0)
    return browsers.group_by("site").agg(
        loaded=loaded.filter(many).sum().cast(pl.Int64),
        many=many.sum().cast(pl.Int64),
        http10=pl.col("http10").sum().cast(pl.Int64),
        proto=pl.col("proto_requests").sum().cast(pl.Int64),
    )


def site_norms(clients: pl.DataFrame | None = None, parts: pl.DataFrame | None = None) -> pl.DataFrame:
    """`site, asset_norm, http10_share`: the share of a site's browser visitors with three or more
    page views that loaded any asset or favicon; the share of its browsers' requests (of a known
    protocol) made with HTTP/1.0. From the client rows, or from `site_norm_parts` of every share
    of them stacked."""
    if parts is None:
        if clients is None:
            raise ValueError("site_norms needs the clients or their site_norm_parts")
        parts = site_norm_parts(clients)
    summed = parts.group_by("site").agg(pl.col("loaded", "many", "http10", "proto").sum())
    return summed.select(
        "site",
        asset_norm=pl.when(pl.col("many") > 0).then(pl.col("loaded") / pl.col("many")),
        http10_share=pl.col("http10") / pl.col("proto"),
    )


def gather(
    frame: pl.DataFrame,
    style: pl.Expr,
    cfg: EvidenceConfig = DEFAULT,
    agree: pl.Expr | None = None,
    norms: pl.DataFrame | None = None,
    supports: pl.Expr | None = None,
) -> pl.DataFrame:
    """Add `ev_decisive` (bool), `ev_support` (how many supporting families hold),
    `automation_score` and `ev_reasons` to client rows carrying the raw behaviour aggregates
    (`pages`, `assets`, `favicon`, `page_gaps`, `page_gap_max`, `page_gap_cv`, `screen_gaps`,
    `screen_gap_max`, `screen_gap_cv`, `form_fill_min_s`, `pay_fill_min_s`, `max_views_per_day`,
    `http10`, `proto_requests`, `switched_visits`) and `site`; `style` is the models' probability
    of automation, `agree` the smaller of the two models' (null where the navigation model does
    not read the client);
    `norms` the sites' norms (`site_norms`) where `frame` holds only some of their clients;
    `supports` the probability that counts as style's support towards two families agreeing
    (default `style`, which alone raises `automation_score`)."""
    norms = site_norms(frame) if norms is None else norms
    df = frame.join(norms, on="site", how="left").with_columns(
        asset_norm=pl.col("asset_norm").fill_null(0.0), http10_share=pl.col("http10_share").fill_null(1.0)
    )
    pages = pl.col("pages").fill_null(0)
    # The views read for timing: page views, or an app's screens where the pages are too few to
    # read and the screens more (a single-page app loads one document a visit).
    page_gaps = pl.col("page_gaps").fill_null(0)
    screens = (page_gaps < cfg.no_reading_gaps) & (pl.col("screen_gaps").fill_null(0) > page_gaps)
    df = df.with_columns(
        view_gaps=pl.when(screens).then(pl.col("screen_gaps")).otherwise(page_gaps),
        view_gap_max=pl.when(screens).then(pl.col("screen_gap_max")).otherwise(pl.col("page_gap_max")),
        view_gap_cv=pl.when(screens).then(pl.col("screen_gap_cv")).otherwise(pl.col("page_gap_cv")),
        view_kind=pl.when(screens).then(pl.lit("screens:")).otherwise(pl.lit("")),
    )
    gaps = pl.col("view_gaps")
    no_reading = ((gaps >= cfg.no_reading_gaps) & (pl.col("view_gap_max") < cfg.no_reading_max_gap_s)) | (
        (gaps >= cfg.skimming_gaps) & (pl.col("view_gap_max") < cfg.skimming_max_gap_s)
    )
    metronome = (gaps >= cfg.metronome_gaps) & pl.col("view_gap_cv").is_between(0, cfg.metronome_cv)
    form_fill = pl.col("form_fill_min_s") <= cfg.form_fill_s
    coverage = pl.col("max_views_per_day").fill_null(0) >= cfg.coverage_views_per_day
    switched = pl.col("switched_visits").fill_null(0) > 0
    old_protocol = (pl.col("http10").fill_null(0) > 0) & (pl.col("http10_share") <= cfg.http10_site_max)
    bare = (
        (pl.col("asset_norm") >= cfg.asset_norm_min)
        & (pages >= cfg.asset_min_pages)
        & (pl.col("assets").fill_null(0) == 0)
        & (pl.col("favicon").fill_null(0) == 0)
    )
    s_assets = pl.when(bare).then(pl.col("asset_norm")).otherwise(0.0)
    quick_pay = pl.col("pay_fill_min_s") <= cfg.form_fill_s
    s_forms = (
        pl.when(pl.col("blind_posts").fill_null(0) > 0)
        .then(cfg.blind_post_strength)
        .when(quick_pay.fill_null(False))
        .then(cfg.quick_pay_strength)
        .otherwise(0.0)
    )
    s_protocol = pl.when(old_protocol).then(cfg.http10_strength).otherwise(0.0)
    hosting = pl.col("hosting") if "hosting" in frame.columns else pl.lit(None, pl.String)
    s_network = pl.when(hosting.is_not_null()).then(cfg.hosting_strength).otherwise(0.0)
    s_style = style.fill_null(0.0).clip(0.0, 1.0)
    s_support = s_style if supports is None else supports.fill_null(0.0)
    both = (agree if agree is not None else pl.lit(None, pl.Float64)) >= cfg.models_agree
    decisive = (
        no_reading | metronome | form_fill.fill_null(False) | coverage | switched | both.fill_null(False)
    ).fill_null(False)
    support = (
        (s_assets >= cfg.support_min).cast(pl.Int8)
        + (s_forms >= cfg.support_min).cast(pl.Int8)
        + (s_protocol >= cfg.support_min).cast(pl.Int8)
        + (s_network >= cfg.support_min).cast(pl.Int8)
        + (s_support >= cfg.support_min).cast(pl.Int8)
    )
    empty = pl.lit([], STR_LIST)

    def reason(cond: pl.Expr, text: pl.Expr | str) -> pl.Expr:
        value = pl.lit(text) if isinstance(text, str) else text
        return pl.when(cond.fill_null(False)).then(pl.concat_list(value)).otherwise(empty)

    strength = pl.when(decisive).then(DECISIVE).otherwise(0.0)
    score = 1 - (1 - strength) * (1 - s_assets) * (1 - s_forms) * (1 - s_protocol) * (1 - s_network) * (1 - s_style)
    return df.with_columns(
        ev_decisive=decisive,
        ev_support=support,
        automation_score=score.round(3),
        ev_reasons=pl.concat_list(
            reason(
                no_reading,
                pl.format(
                    "evidence:timing:no_reading:{}max_gap={}s", pl.col("view_kind"), pl.col("view_gap_max").round(1)
                ),
            ),
            reason(
                metronome,
                pl.format("evidence:timing:metronome:{}cv={}", pl.col("view_kind"), pl.col("view_gap_cv").round(2)),
            ),
            reason(form_fill, pl.format("evidence:timing:form_fill={}s", pl.col("form_fill_min_s").round(1))),
            reason(coverage, pl.format("evidence:coverage:views_per_day={}", pl.col("max_views_per_day"))),
            reason(switched, pl.format("evidence:protocol:switched_in_visit={}", pl.col("switched_visits"))),
            reason(
                both,
                pl.format("evidence:style:models_agree={}", (agree if agree is not None else pl.lit(0.0)).round(2)),
            ),
            reason(
                s_assets >= cfg.support_min,
                pl.format("evidence:assets:none_where_site_norm={}", pl.col("asset_norm").round(2)),
            ),
            reason(
                pl.col("blind_posts").fill_null(0) > 0,
                pl.format("evidence:forms:posted_unloaded={}", pl.col("blind_posts")),
            ),
            reason(quick_pay, pl.format("evidence:forms:paid_within={}s", pl.col("pay_fill_min_s").round(1))),
            reason(
                s_protocol >= cfg.support_min,
                pl.format("evidence:protocol:http10_where_site_share={}", pl.col("http10_share").round(2)),
            ),
            reason(s_network >= cfg.support_min, hosting_reason(hosting)),
        ),
    ).drop("asset_norm", "http10_share", "view_gaps", "view_gap_max", "view_gap_cv", "view_kind")


def decided() -> pl.Expr:
    """The decision rule over `gather`'s columns: decisive evidence, or two supporting families."""
    return pl.col("ev_decisive") | (pl.col("ev_support") >= 2)


def with_automation_score(clients: pl.DataFrame) -> pl.DataFrame:
    """Every client's `automation_score` once its labels are final: a browser's from its evidence;
    for a client automated by its user agent, its network or a threat only automation shows, that
    is decisive evidence too (at least DECISIVE, 1 where behaviour gave no score); 0 for the rest."""
    score = pl.col("automation_score") if "automation_score" in clients.columns else pl.lit(None, pl.Float64)
    by_threat = pl.col("threats").list.eval(pl.element().is_in(list(AUTOMATED_THREATS))).list.any().fill_null(False)
    decisive = pl.col("automated") & (score.is_null() | by_threat)
    return clients.with_columns(
        automation_score=pl.when(decisive)
        .then(pl.max_horizontal(score.fill_null(1.0), pl.lit(DECISIVE)))
        .otherwise(score.fill_null(0.0))
    )


__all__ = [
    "DEFAULT",
    "LIKELY_AUTOMATED",
    "SUPPORT_REASONS",
    "EvidenceConfig",
    "decided",
    "gather",
    "site_norm_parts",
    "site_norms",
    "with_automation_score",
]
