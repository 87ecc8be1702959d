"""Behavioural threats: what a client does over time, per client and per group of clients.

Each threat is one builder: a function of the thresholds that returns the SQL of the CTEs it needs
and names those whose rows are its findings (`client_id, threat, reason`). `client_threats` runs
them all in one query; `behavioural_sql` composes any of them, so one threat can be run alone.
Login, sign-up and payment endpoints come from the page-type rules. Every finding carries a reason
that says what crossed which threshold.

A builder's CTEs are of two kinds (DESIGN.md, "Scale"). Per client: they read `r` (requests, with
client_id, session_id, page_type and endpoint) and each other, and a client's rows depend on its
own requests only, so they can be computed bucket by bucket (`client_rows_sql`). Per group
(`ThreatSQL.group`): they read the per-client rows the builder names in `ThreatSQL.rows`, the
clients whose user agent is a plain browser (`browsers`), those of HTTP tools, and
`request_attacks`, never `r`: what a group of clients does together (a campaign, a swarm, a
network, an address rotating user agents), over the rows of every bucket (`behavioural_sql` with
`rows`). Over one table, both kinds run in one query and give the same findings.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass

import duckdb
import polars as pl

from trafficlens.classify.threats.config import ThreatConfig
from trafficlens.schema import CONTENT_PAGE_TYPES
from trafficlens.store import sql_literal


@dataclass(frozen=True)
class Inputs:
    """The tables the behavioural threats read."""

    table: str = "sessionised"  # every request, with client_id, session_id, page_type, endpoint
    browsers: str = "client_browsers"  # client_ids whose user agent is a plain browser
    tools: str = "client_tools"  # client_ids of HTTP tools, libraries and empty user agents


@dataclass(frozen=True)
class ThreatSQL:
    """A behavioural threat as SQL: its CTEs (name -> query, in the order they are defined, later
    ones reading earlier ones), the names of those whose rows are its findings, those that read
    every client (`group`; the others read `r`, one client at a time) and the per-client ones the
    group CTEs read (`rows`)."""

    ctes: dict[str, str]
    findings: tuple[str, ...]
    group: tuple[str, ...] = ()
    rows: tuple[str, ...] = ()


Builder = Callable[[ThreatConfig, Inputs], ThreatSQL]

# An answer that turns a login down.
_FAILED = "(status IN (401, 403, 429) OR status >= 400 AND status < 500)"


def _content() -> str:
    return ", ".join(sql_literal(t) for t in CONTENT_PAGE_TYPES)


def _window(cfg: ThreatConfig) -> str:
    return f"time_bucket(INTERVAL {cfg.window_minutes} MINUTE, ts)"


def _campaign_less_a_tick(cfg: ThreatConfig) -> str:
    """SQL: a campaign window less one microsecond, the ticks timestamps count in: a window frame's
    bounds are inclusive, the window's end is not."""
    return f"(INTERVAL {cfg.campaign_minutes} MINUTE - INTERVAL 1 MICROSECOND)"


def _campaign_window(expr: str, cfg: ThreatConfig) -> str:
    return f"time_bucket(INTERVAL {cfg.campaign_minutes} MINUTE, {expr})"


def credential_stuffing(cfg: ThreatConfig, inputs: Inputs) -> ThreatSQL:
    """Brute force (failed logins, login posts at machine pace, refused HTTP authentication) and
    stuffing (clients that only post failing logins, alone or as a campaign of addresses)."""
    w = cfg.window_minutes
    return ThreatSQL(
        {
            "login": f"""
        SELECT client_id, client_ip, site, {_window(cfg)} AS win, count(*) AS n, avg({_FAILED}::INT) AS fail
        FROM r WHERE endpoint = 'login' AND method = 'POST' GROUP BY ALL""",
            "brute": f"""
        SELECT DISTINCT client_id, 'credential_stuffing' AS threat,
               'threat:brute_force:failed_logins=' || (n * fail)::INT || '/' || {w} || 'min' AS reason
        FROM login WHERE n * fail >= {cfg.brute_force_failures}""",
            # Login posts at machine pace, whatever the answer.
            "hasty": f"""
        SELECT DISTINCT client_id, 'credential_stuffing' AS threat,
               'threat:brute_force:login_posts=' || n || '/1min' AS reason
        FROM (SELECT client_id, date_trunc('minute', ts) AS m, count(*) AS n
              FROM r WHERE endpoint = 'login' AND method = 'POST' GROUP BY ALL)
        WHERE n >= {cfg.login_posts_per_minute}""",
            # Refused HTTP authentication, over and over.
            "http_auth": f"""
        SELECT DISTINCT client_id, 'credential_stuffing' AS threat,
               'threat:brute_force:http_auth_failures=' || n || '/' || {w} || 'min' AS reason
        FROM (SELECT client_id, {_window(cfg)} AS win, count(*) FILTER (WHERE status = 401) AS n, count(*) AS total
              FROM r GROUP BY ALL)
        WHERE n >= {cfg.http_auth_failures} AND n >= {cfg.http_auth_failure_share} * total""",
            # Clients that post failing logins and fetch nothing else.
            "blind": f"""
        SELECT client_id, any_value(site) AS site, any_value(client_ip) AS client_ip,
               count(*) FILTER (WHERE endpoint = 'login' AND method = 'POST' AND {_FAILED}) AS failures,
               min(ts) AS first_ts
        FROM r GROUP BY client_id
        HAVING count(*) FILTER (WHERE NOT (endpoint = 'login' AND method = 'POST')) = 0
           AND count(*) FILTER (WHERE endpoint = 'login' AND method = 'POST' AND {_FAILED}) >= 1""",
            "campaign": f"""
        SELECT site, {_campaign_window("first_ts", cfg)} AS win FROM blind
        GROUP BY ALL HAVING count(DISTINCT client_ip) >= {cfg.stuffing_addresses}""",
            "stuffing": f"""
        SELECT b.client_id, 'credential_stuffing' AS threat,
               'threat:credential_stuffing:login_posts_only,failed=' || b.failures AS reason
        FROM blind b WHERE b.failures >= {cfg.stuffing_min_failures}
        UNION ALL
        SELECT b.client_id, 'credential_stuffing',
               'threat:credential_stuffing:campaign>=' || {cfg.stuffing_addresses} || '_addresses/'
               || {cfg.campaign_minutes} || 'min'
        FROM blind b JOIN campaign c ON b.site = c.site
                                    AND {_campaign_window("b.first_ts", cfg)} = c.win""",
        },
        ("brute", "hasty", "http_auth", "stuffing"),
        group=("campaign", "stuffing"),
        rows=("blind",),
    )


def card_testing(cfg: ThreatConfig, inputs: Inputs) -> ThreatSQL:
    """Many payment attempts in a window, most of them declined."""
    w = cfg.window_minutes
    return ThreatSQL(
        {
            "pay": f"""
        SELECT client_id, {_window(cfg)} AS win, count(*) AS n,
               avg((status = 402 OR status >= 400)::INT) AS declined
        FROM r WHERE endpoint = 'payment' AND method = 'POST' GROUP BY ALL""",
            "cards": f"""
        SELECT DISTINCT client_id, 'card_testing' AS threat,
               'threat:card_testing:payment_attempts=' || n || '/' || {w} || 'min,declined=' || round(declined, 2)
               AS reason
        FROM pay WHERE n >= {cfg.card_attempts} AND declined >= {cfg.card_decline_share}""",
        },
        ("cards",),
    )


def fake_signup(cfg: ThreatConfig, inputs: Inputs) -> ThreatSQL:
    """Repeated sign-ups from one client, or a burst of sessions from several addresses that only
    touch the sign-up form, or post it without typing it, loading no asset and reading at most
    one page (a sign-up farm)."""
    w = cfg.window_minutes
    return ThreatSQL(
        {
            "signup": f"""
        SELECT client_id, client_ip, site, session_id, {_window(cfg)} AS win,
               count(*) FILTER (WHERE method = 'POST') AS n
        FROM r WHERE endpoint = 'signup' GROUP BY ALL""",
            # Each sign-up post and the time since the session's page before it (none: posted blind).
            "signup_gaps": """
        SELECT session_id, method, endpoint, ts - lag(ts) OVER (PARTITION BY session_id ORDER BY ts) AS since
        FROM r WHERE page_type IS DISTINCT FROM 'static'
          AND session_id IN (SELECT session_id FROM r WHERE endpoint = 'signup' AND method = 'POST')""",
            # Sessions that did nothing but touch the sign-up endpoint; or that posted the form
            # unloaded or faster than it can be typed, loading no asset and reading at most one page.
            "lonely": f"""
        SELECT session_id FROM r GROUP BY session_id
        HAVING count(*) FILTER (WHERE endpoint IS DISTINCT FROM 'signup') = 0 AND count(*) <= 4
        UNION
        SELECT session_id FROM r
        WHERE session_id IN (SELECT session_id FROM signup_gaps WHERE endpoint = 'signup' AND method = 'POST'
                             AND (since IS NULL OR since <= INTERVAL {cfg.signup_typing_s} SECOND))
        GROUP BY session_id
        HAVING count(*) FILTER (WHERE page_type = 'static') = 0
           AND count(*) FILTER (WHERE page_type IN ({_content()})) <= 1""",
            "lonely_signup": """
        SELECT session_id, any_value(client_id) AS client_id, any_value(client_ip) AS client_ip,
               any_value(site) AS site, min(ts) AS t
        FROM r WHERE endpoint = 'signup' AND session_id IN (SELECT session_id FROM lonely) GROUP BY session_id""",
            # Any hour holding enough of them, not only a clock hour: each session opens a window
            # of its own, and a window that holds enough marks all of its sessions. As windows over
            # the sessions in time order (timestamps are in microseconds: the hour's end is left
            # out), not as a join of the sessions with each other, which grows with their square.
            "burst_from": f"""
        SELECT client_id, site, t, count(*) OVER campaign AS sessions, count(DISTINCT client_ip) OVER campaign AS addresses
        FROM lonely_signup
        WINDOW campaign AS (PARTITION BY site ORDER BY t
                        RANGE BETWEEN CURRENT ROW AND {_campaign_less_a_tick(cfg)} FOLLOWING)""",
            "burst": f"""
        SELECT DISTINCT client_id FROM (
            SELECT client_id, bool_or(sessions >= {cfg.signup_burst} AND addresses >= {cfg.signup_burst_addresses})
                              OVER (PARTITION BY site ORDER BY t
                                    RANGE BETWEEN {_campaign_less_a_tick(cfg)} PRECEDING AND CURRENT ROW) AS held
            FROM burst_from)
        WHERE held""",
            "signups": f"""
        SELECT DISTINCT client_id, 'fake_signup' AS threat,
               'threat:fake_signup:signups=' || n || '/' || {w} || 'min' AS reason
        FROM signup WHERE n >= {cfg.signup_per_client}
        UNION ALL
        SELECT DISTINCT s.client_id, 'fake_signup',
               'threat:fake_signup:burst>=' || {cfg.signup_burst} || '_from_' || {cfg.signup_burst_addresses}
               || '+_addresses/' || {cfg.campaign_minutes} || 'min'
        FROM burst s""",
        },
        ("signups",),
        group=("burst_from", "burst", "signups"),
        rows=("signup", "lonely_signup"),
    )


def vuln_scan(cfg: ThreatConfig, inputs: Inputs) -> ThreatSQL:
    """Many distinct attack-rule paths, or many distinct paths answered 4xx mostly (fewer for a
    script, which has no stale links to follow). Reads `request_attacks` (see
    `rules.request_attacks`), which names the client and path of each request that matched."""
    return ThreatSQL(
        {
            # Clients answered 4xx: their distinct such paths and share of 4xx answers. Distinct
            # paths counted among the few requests that matched a rule or were answered 4xx, not
            # over every request: on a long log that is most of the threat layer's time.
            "answered_4xx": """
        SELECT f.client_id, f.paths_4xx, c.share_4xx
        FROM (SELECT client_id, count(DISTINCT path) AS paths_4xx
              FROM r WHERE status BETWEEN 400 AND 499 GROUP BY client_id) f
        JOIN (SELECT client_id, avg((status BETWEEN 400 AND 499)::INT) AS share_4xx FROM r GROUP BY client_id) c
        USING (client_id)""",
            # A client with no 4xx answer has no share to read: only its rule paths can make it a scanner.
            "probes": """
        SELECT client_id, coalesce(a.rule_paths, 0) AS rule_paths, coalesce(f.paths_4xx, 0) AS paths_4xx,
               f.share_4xx
        FROM answered_4xx f
        FULL JOIN (SELECT client_id, count(DISTINCT path) AS rule_paths
                   FROM request_attacks WHERE attack_rules IS NOT NULL GROUP BY client_id) a USING (client_id)""",
            "scans": f"""
        SELECT client_id, 'vuln_scan' AS threat,
               CASE WHEN rule_paths >= {cfg.scan_rule_paths} THEN 'threat:vuln_scan:attack_paths=' || rule_paths
                    ELSE 'threat:vuln_scan:4xx_paths=' || paths_4xx || ',4xx_share=' || round(share_4xx, 2)
               END AS reason
        FROM probes
        WHERE rule_paths >= {cfg.scan_rule_paths}
           OR (paths_4xx >= {cfg.scan_404_paths} AND share_4xx >= {cfg.scan_404_share})
           OR (paths_4xx >= {cfg.tool_404_paths} AND share_4xx >= {cfg.scan_404_share}
               AND client_id IN (SELECT client_id FROM {inputs.tools}))""",
        },
        ("scans",),
        group=("probes", "scans"),
        rows=("answered_4xx",),
    )


# What only a group step may read: which clients are browsers or tools, and the attack rules' matches.
_EVERY_CLIENT = re.compile(r"\b(browsers|request_attacks)\b")
# The CTEs of `_sweeps` that read every client.
_SWEEP_GROUPS = ("bare", "asset_norms", "nets")


def _sweeps(cfg: ThreatConfig) -> dict[str, str]:
    """`sweep`: per client, the content pages, assets, other requests and referrers it fetched and
    its pace;
    `bare`: browsers fetching content with no assets and no referrers, with their IPv4 /16;
    `asset_norms`: per site, the share of its browsers of three views or more that loaded assets;
    `nets`: the networks where many such addresses sweep many pages, on a site whose browsers load
    its assets. Where the assets come from a CDN, every person's visit is bare but for its
    referrer, and an ISP's /16 that residential proxies sweep also holds its people landing
    from a bookmark or an app: the network says nothing of them there."""
    content = _content()
    return {
        "sweep": f"""
        SELECT client_id, any_value(client_ip) AS client_ip, any_value(site) AS site,
               any_value(user_agent) AS user_agent,
               count(*) FILTER (WHERE page_type IN ({content})) AS pages,
               count(*) FILTER (WHERE page_type = 'static') AS assets,
               count(*) FILTER (WHERE page_type IS DISTINCT FROM 'static') AS views,
               count(*) FILTER (WHERE referer IS NOT NULL) AS referred,
               count(*) / greatest((epoch(max(ts)) - epoch(min(ts))) / 60.0, 1.0) AS rate,
               min(ts) AS first_ts
        FROM r GROUP BY client_id""",
        "bare": """
        SELECT s.*, regexp_extract(s.client_ip, '^([0-9]+\\.[0-9]+)\\.', 1) AS net
        FROM sweep s JOIN browsers b USING (client_id)
        WHERE s.assets = 0 AND s.pages > 0 AND s.referred = 0 AND s.client_ip NOT LIKE '%:%'
          AND regexp_matches(s.client_ip, '^[0-9]+\\.[0-9]+\\.')""",
        "asset_norms": """
        SELECT site, avg((assets > 0)::DOUBLE) AS norm FROM sweep
        WHERE views >= 3 AND client_id IN (SELECT client_id FROM browsers) GROUP BY site""",
        "nets": f"""
        SELECT site, net, count(DISTINCT client_ip) AS addrs, sum(pages) AS pages,
               count(DISTINCT user_agent) AS uas
        FROM bare JOIN asset_norms USING (site) WHERE norm >= {cfg.scrape_net_asset_norm} GROUP BY ALL
        HAVING count(DISTINCT client_ip) >= {cfg.scrape_net_clients} AND sum(pages) >= {cfg.scrape_net_pages}""",
    }


def _swarms(cfg: ThreatConfig) -> dict[str, str]:
    """`bare_paths`: the content pages each client fetched that loaded no asset and sent no
    referrer, per path, with how many times (per client); `arrivals`: every client with the window
    of its first request and whether it is a bare browser (content, no asset, no referrer);
    `swarms`: the windows where bare browsers arrive in numbers, far beyond the site's share of
    them, fetching mostly different pages (see `ThreatConfig.swarm_*`)."""
    content = _content()
    return {
        "bare_paths": f"""
        SELECT client_id, path, count(*) AS n
        FROM r WHERE page_type IN ({content})
          AND client_id IN (SELECT client_id FROM sweep WHERE assets = 0 AND pages > 0 AND referred = 0)
        GROUP BY ALL""",
        "arrivals": f"""
        SELECT client_id, site, time_bucket(INTERVAL {cfg.swarm_minutes} MINUTE, first_ts) AS win,
               assets = 0 AND pages > 0 AND referred = 0 AND client_id IN (SELECT client_id FROM browsers)
               AS is_bare
        FROM sweep""",
        "swarm_wins": f"""
        SELECT a.site, a.win, count(*) FILTER (WHERE a.is_bare) AS bare, count(*) AS arrived
        FROM arrivals a
        JOIN (SELECT site, count(*) FILTER (WHERE is_bare) AS b, count(*) AS n FROM arrivals GROUP BY site) s
        USING (site)
        GROUP BY a.site, a.win, s.b, s.n
        HAVING bare >= {cfg.swarm_addresses} AND bare >= {cfg.swarm_share} * arrived
           AND bare * (s.n - s.b) >= {cfg.swarm_odds} * (arrived - bare) * s.b""",
        "swarms": f"""
        SELECT w.site, w.win, w.bare, count(DISTINCT p.path) AS paths, sum(p.n)::BIGINT AS pages
        FROM bare_paths p JOIN arrivals a USING (client_id) JOIN swarm_wins w ON a.site = w.site AND a.win = w.win
        WHERE a.is_bare
        GROUP BY w.site, w.win, w.bare
        HAVING count(DISTINCT p.path) >= {cfg.swarm_spread} * sum(p.n)""",
    }


def abusive_scraping(cfg: ThreatConfig, inputs: Inputs) -> ThreatSQL:
    """Many content pages at machine pace with no assets, by a browser user agent or an HTTP tool;
    a network of addresses sweeping content with browser user agents (rotating proxies of one
    provider); or a swarm of bare browsers from anywhere (residential proxies)."""
    sweeps = _sweeps(cfg)
    return ThreatSQL(
        {
            "sweep": sweeps["sweep"],
            "asset_norms": sweeps["asset_norms"],
            # A crawler that says who it is (GPTBot, Bingbot) crawls at machine pace by nature; the
            # threat is the one that hides behind a browser's or a library's user agent.
            # Where the site's own browsers load no assets (they come from a CDN: `asset_norms`), a
            # browser's lack of them says nothing, and a person flicking through "next" links reads
            # ten pages a minute: only a pace no reader keeps counts there. An HTTP tool loads none
            # anywhere.
            "scrape": f"""
        SELECT client_id, 'abusive_scraping' AS threat,
               'threat:abusive_scraping:pages=' || pages || ',rate=' || round(rate, 1) || '/min,assets=0' AS reason
        FROM sweep LEFT JOIN asset_norms USING (site)
        WHERE pages >= {cfg.scrape_pages} AND assets = 0
          AND (client_id IN (SELECT client_id FROM {inputs.tools}) AND rate >= {cfg.scrape_rate_per_min}
               OR client_id IN (SELECT client_id FROM browsers)
                  AND rate >= CASE WHEN coalesce(norm, 0) >= {cfg.scrape_asset_norm} THEN {cfg.scrape_rate_per_min}
                                   ELSE {cfg.scrape_bare_rate_per_min} END)""",
            "bare": sweeps["bare"],
            "nets": sweeps["nets"],
            "netscrape": """
        SELECT s.client_id, 'abusive_scraping' AS threat,
               'threat:abusive_scraping:network=' || n.net || '.0.0/16,addresses=' || n.addrs || ',pages=' || n.pages
               AS reason
        FROM bare s JOIN nets n ON s.site = n.site AND s.net = n.net""",
            **_swarms(cfg),
            "swarmscrape": f"""
        SELECT a.client_id, 'abusive_scraping' AS threat,
               'threat:abusive_scraping:swarm=' || w.bare || '_addresses/{cfg.swarm_minutes}min,distinct_pages='
               || w.paths || '/' || w.pages AS reason
        FROM arrivals a JOIN swarms w ON a.site = w.site AND a.win = w.win WHERE a.is_bare""",
        },
        ("scrape", "netscrape", "swarmscrape"),
        group=_SWEEP_GROUPS + ("scrape", "netscrape", "arrivals", "swarm_wins", "swarms", "swarmscrape"),
        rows=("sweep", "bare_paths"),
    )


def ua_rotation(cfg: ThreatConfig, inputs: Inputs) -> ThreatSQL:
    """One address cycling through many browser user agents with no assets and (nearly) no
    referrers; or a sweeping network (see `abusive_scraping`) whose addresses share a pool of user
    agents."""
    return ThreatSQL(
        {
            **_sweeps(cfg),
            "netrotation": f"""
        SELECT s.client_id, 'ua_rotation' AS threat,
               'threat:ua_rotation:network=' || n.net || '.0.0/16,user_agents=' || n.uas AS reason
        FROM bare s JOIN nets n ON s.site = n.site AND s.net = n.net
        WHERE n.uas >= {cfg.rotation_user_agents}""",
            # Browser user agents only: a declared bot's user agent varies by itself (versions, a feed
            # reader's subscriber count) without anyone hiding behind it.
            # Each client's requests by clock hour: all, assets, and without a referrer.
            "hours": """
        SELECT client_id, site, client_ip, user_agent, time_bucket(INTERVAL 1 HOUR, ts) AS hr, count(*) AS n,
               count(*) FILTER (WHERE page_type = 'static') AS assets,
               count(*) FILTER (WHERE referer IS NULL) AS unreferred
        FROM r GROUP BY ALL""",
            # Only an address with that many browser user agents in all can have them in one hour:
            # the hours are counted for those few, not for every address of the log.
            "rot_addrs": f"""
        SELECT site, client_ip FROM hours WHERE client_id IN (SELECT client_id FROM browsers)
        GROUP BY ALL HAVING count(DISTINCT user_agent) >= {cfg.rotation_user_agents}""",
            # Bare, too: people behind one carrier's or office's address are many browsers in an
            # hour, and on a site whose assets come from a CDN they load none here either; but they
            # follow links, and their page views name the page they came from.
            "rot": f"""
        SELECT site, client_ip, hr, count(DISTINCT user_agent) AS uas, sum(assets) AS assets
        FROM hours JOIN rot_addrs USING (site, client_ip) WHERE client_id IN (SELECT client_id FROM browsers)
        GROUP BY ALL HAVING count(DISTINCT user_agent) >= {cfg.rotation_user_agents} AND sum(assets) = 0
                        AND sum(unreferred) >= {cfg.rotation_bare_share} * sum(n)""",
            "rotation": """
        SELECT DISTINCT h.client_id, 'ua_rotation' AS threat,
               'threat:ua_rotation:user_agents=' || rot.uas || '/hour' AS reason
        FROM hours h JOIN rot ON h.site = rot.site AND h.client_ip = rot.client_ip AND h.hr = rot.hr
        WHERE h.client_id IN (SELECT client_id FROM browsers)""",
        },
        ("netrotation", "rotation"),
        group=_SWEEP_GROUPS + ("netrotation", "rot_addrs", "rot", "rotation"),
        rows=("sweep", "hours"),
    )


def dos(cfg: ThreatConfig, inputs: Inputs) -> ThreatSQL:
    """A flood of requests in one minute, or cache busting: one path asked for over and over, a
    new bare token as its query each time."""
    return ThreatSQL(
        {
            "flood": f"""
        SELECT client_id, 'dos' AS threat, 'threat:dos:requests=' || max(n) || '/min' AS reason
        FROM (SELECT client_id, date_trunc('minute', ts) AS m, count(*) AS n FROM r GROUP BY ALL)
        GROUP BY client_id HAVING max(n) >= {cfg.dos_per_minute}""",
            "bypass": f"""
        SELECT DISTINCT client_id, 'dos' AS threat,
               'threat:dos:cache_bypass=' || n || '_queries/1min' AS reason
        FROM (SELECT client_id, path, date_trunc('minute', ts) AS m, count(DISTINCT query) AS n
              FROM r WHERE query IS NOT NULL AND NOT contains(query, '=') GROUP BY ALL)
        WHERE n >= {cfg.cache_bypass_per_minute}""",
        },
        ("flood", "bypass"),
    )


# Every behavioural threat, in the order their CTEs are defined.
BEHAVIOURAL_THREATS: tuple[Builder, ...] = (
    credential_stuffing,
    card_testing,
    fake_signup,
    vuln_scan,
    abusive_scraping,
    ua_rotation,
    dos,
)
# The order findings are listed in: a client's reasons keep it. Findings not named here follow.
FINDINGS_ORDER = (
    "brute",
    "hasty",
    "http_auth",
    "bypass",
    "stuffing",
    "cards",
    "signups",
    "scans",
    "scrape",
    "netscrape",
    "swarmscrape",
    "netrotation",
    "rotation",
    "flood",
)


def _composed(
    cfg: ThreatConfig, threats: Sequence[Builder], inputs: Inputs
) -> tuple[dict[str, str], set[str], list[str], list[str]]:
    """The CTEs of `threats` (name -> SQL, in order), the names of those that read every client,
    the per-client ones any group CTE or finding reads, and the findings in FINDINGS_ORDER."""
    ctes: dict[str, str] = {}
    group: set[str] = set()
    rows: list[str] = []
    findings: list[str] = []
    for build in threats:
        part = build(cfg, inputs)
        for name, sql in part.ctes.items():
            # Threats share some steps (the sweeping networks): each is defined once.
            if ctes.setdefault(name, sql) != sql:
                raise ValueError(f"two behavioural threats define {name} differently")
        if not set(part.group) | set(part.rows) <= set(part.ctes):
            raise ValueError(f"{build.__name__} names a CTE it does not define")
        for name, sql in part.ctes.items():
            # A per-client step reads one client's requests only, or a bucket would change its rows.
            if name not in part.group and _EVERY_CLIENT.search(sql.replace(inputs.tools, "browsers")):
                raise ValueError(f"{build.__name__}: {name} reads every client but is not in its group")
        group |= set(part.group)
        rows += [n for n in (*part.rows, *part.findings) if n not in part.group and n not in rows]
        findings += [f for f in part.findings if f not in findings]
    if not findings:
        raise ValueError("no behavioural threat to look for")
    findings.sort(key=lambda f: FINDINGS_ORDER.index(f) if f in FINDINGS_ORDER else len(FINDINGS_ORDER))
    return ctes, group, rows, findings


def client_rows_sql(
    cfg: ThreatConfig, threats: Sequence[Builder] = BEHAVIOURAL_THREATS, table: str = "sessionised", saved: str = ""
) -> dict[str, str]:
    """Per-client rows of `threats` over `table` (name -> one query each, in order): what the group
    step reads of a share of the clients, all of whose requests `table` holds (a bucket). Findings
    of a single client are among them, as rows to be listed. With `saved`, each query reads the
    rows of those before it from the table `saved + name` (the caller keeps them so) rather than
    computing them again."""
    ctes, group, rows, _ = _composed(cfg, threats, Inputs(table))
    queries = {}
    for i, out in enumerate(rows):
        before = set(rows[:i]) if saved else set()
        defined = [f"r AS NOT MATERIALIZED (SELECT * FROM {table}\n)"]
        defined += [
            f"{name} AS ({f'SELECT * FROM {saved}{name}' if name in before else sql}\n)"
            for name, sql in ctes.items()
            if name not in group
        ]
        # DuckDB leaves out the CTEs a query does not read.
        queries[out] = f"WITH {','.join(defined)}\nSELECT * FROM {out}"
    return queries


def behavioural_sql(
    cfg: ThreatConfig,
    threats: Sequence[Builder] = BEHAVIOURAL_THREATS,
    inputs: Inputs | None = None,
    rows: Mapping[str, str] | None = None,
) -> str:
    """One query giving the `client_id, threat, reason` rows of `threats` over `inputs`. With
    `rows` (name -> a table or query holding those per-client rows for every client, as
    `client_rows_sql` gives them bucket by bucket), the per-client steps are read from there
    rather than computed from `inputs.table`: the same findings."""
    inputs = inputs or Inputs()
    ctes, group, needed, findings = _composed(cfg, threats, inputs)
    browsers = f"SELECT client_id FROM {inputs.browsers}"
    if rows is None:
        ctes = {"r": f"SELECT * FROM {inputs.table}", "browsers": browsers, **ctes}
    else:
        missing = [n for n in needed if n not in rows]
        if missing:
            raise ValueError(f"per-client rows missing: {', '.join(missing)}")
        ctes = {
            "browsers": browsers,
            **{n: f"SELECT * FROM {rows[n]}" for n in needed},
            **{n: sql for n, sql in ctes.items() if n in group},
        }
    # Every request is read by many steps: each reads the columns it needs from the table again,
    # rather than DuckDB materialising whole requests once (spilling, and slower, on a long log).
    defined = ",\n".join(
        f"{name} AS {'NOT MATERIALIZED ' if name == 'r' else ''}({sql}\n)" for name, sql in ctes.items()
    )
    # In FINDINGS_ORDER, whatever order the threads of the query finish in: a client's reasons
    # read the same on every run.
    union = "\nUNION ALL ".join(f"SELECT *, {i} AS _o FROM {f}" for i, f in enumerate(findings))
    return f"WITH {defined}\nSELECT * EXCLUDE (_o) FROM ({union}) ORDER BY client_id, _o, reason"


def client_threats(
    con: duckdb.DuckDBPyConnection,
    cfg: ThreatConfig,
    table: str = "sessionised",
    browsers: str = "client_browsers",
    tools: str = "client_tools",
    rows: Mapping[str, str] | None = None,
) -> pl.DataFrame:
    """`client_id, threat, reason` rows: every behavioural threat each client shows. `browsers`
    names a table of the client_ids whose user agent is a plain browser (identity none or
    undeclared), `tools` those of HTTP tools, libraries and empty user agents. With `rows`, the
    per-client steps are read from there rather than from `table` (see `behavioural_sql`)."""
    return con.sql(behavioural_sql(cfg, inputs=Inputs(table, browsers, tools), rows=rows)).pl()
