"""Threats: attack patterns per request, and behavioural threats per client and client group.

Per request (DESIGN.md layer 4): the rules of catalogues/attack_rules.yml over the request target
(URL-decoded twice, lower-cased), its path, the raw request line, the method and the user agent.
They run once per distinct value, behind one combined regex that lets the benign majority through
in a single pass; matches are joined back.

Per client and group, in time windows: vulnerability scanning, credential stuffing and brute
force, card testing, fake sign-ups, abusive scraping, user-agent rotation, floods, and robots.txt
violations when the site's robots.txt is given. Login, sign-up and payment endpoints come from the
page-type rules. Every threat carries a reason that says what crossed which threshold.
"""

from __future__ import annotations

from dataclasses import dataclass, fields
from importlib import resources
from pathlib import Path

import duckdb
import polars as pl
import yaml

from trafficlens.classify.agents import SAFE_LOADER
from trafficlens.errors import CatalogueError
from trafficlens.schema import THREATS

RULE_FIELDS = ("target", "path", "user_agent", "method", "request_line", "protocol")
STR_LIST = pl.List(pl.String())


@dataclass(frozen=True)
class AttackRule:
    id: str
    threat: str
    field: str
    pattern: str
    description: str = ""


def rules_path() -> Path:
    return Path(str(resources.files("trafficlens") / "catalogues" / "attack_rules.yml"))


def load_attack_rules(path: str | Path | None = None) -> list[AttackRule]:
    p = Path(path) if path else rules_path()
    doc = yaml.load(p.read_text(encoding="utf-8"), Loader=SAFE_LOADER) or []
    rules, seen = [], set()
    con = duckdb.connect()
    try:
        for i, raw in enumerate(doc, 1):
            rid = raw.get("id")
            if not rid or rid in seen:
                raise CatalogueError(f"{p.name}: rule {i} needs a unique id (got {rid!r})")
            seen.add(rid)
            if raw.get("threat") not in THREATS:
                raise CatalogueError(f"{p.name}: rule {rid}: threat {raw.get('threat')!r} is not one of {THREATS}")
            if raw.get("field") not in RULE_FIELDS:
                raise CatalogueError(f"{p.name}: rule {rid}: field must be one of {RULE_FIELDS}")
            try:
                con.execute("SELECT regexp_matches('', ?)", [raw["pattern"]])
            except duckdb.Error as e:
                raise CatalogueError(f"{p.name}: rule {rid}: bad pattern: {str(e).splitlines()[0]}") from None
            rules.append(AttackRule(rid, raw["threat"], raw["field"], raw["pattern"], raw.get("description", "")))
    finally:
        con.close()
    return rules


def _lit(s: str) -> str:
    return "'" + s.replace("'", "''") + "'"


# Percent escapes of the ASCII characters attacks are made of: decoded even where the whole
# value is not valid UTF-8 once decoded (Windows-1251 search terms, binary probes).
_ASCII_ESCAPES = {f"%{b:02x}": chr(b) for b in b" \"'<>/.\\()=;%{}$&?#+@`|:[]!*,-_~^"}


def url_decoded(expr: str) -> str:
    """SQL: `expr` lower-cased and percent-decoded once, bytes that decode to no valid UTF-8 kept
    as escapes apart from the ASCII ones."""
    low = f"lower({expr})"
    ascii_only = low
    for code, ch in _ASCII_ESCAPES.items():
        ascii_only = f"replace({ascii_only}, {_lit(code)}, {_lit(ch)})"
    return f"coalesce(try(lower(url_decode({low}))), {ascii_only})"


def field_sql(field: str) -> str:
    """How a rule's field is computed from a request's columns (as the rules file describes)."""
    target = "path || coalesce('?' || query, '')"
    return {
        "target": url_decoded(url_decoded(f"coalesce({target}, '')")),
        "path": url_decoded(url_decoded("coalesce(path, '')")),
        "user_agent": "lower(coalesce(user_agent, ''))",
        "referer": "lower(coalesce(referer, ''))",
        "method": "coalesce(method, '')",
        # A malformed request keeps its raw text in path (method null); a good one is rebuilt. In
        # the plain CLF formats a host can only come from an absolute-form target (GET http://…),
        # which is rebuilt too (the scheme is not logged apart: http).
        "request_line": "lower(CASE WHEN method IS NULL THEN coalesce(path, '') "
                        "WHEN host IS NOT NULL AND format IN ('combined', 'common') "
                        "THEN method || ' http://' || host || coalesce(" + target + ", '') "
                        "ELSE method || ' ' || coalesce(" + target + ", '') END)",
        "protocol": "lower(coalesce(protocol, ''))",
    }[field]


def request_matches(con: duckdb.DuckDBPyConnection, rules: list[AttackRule], table: str = "sessionised") -> None:
    """Creates `request_attacks(source, line_no, attack_rules, attack_threats)` for the requests of
    `table` that match any rule (requests that match none are absent)."""
    by_field: dict[str, list[AttackRule]] = {}
    for r in rules:
        by_field.setdefault(r.field, []).append(r)
    parts = []
    # Header rules read the referer too: both are headers the client writes as it likes.
    if "user_agent" in by_field:
        by_field["referer"] = by_field["user_agent"]
    for fld, rs in by_field.items():
        value = field_sql(fld)
        keys = {"user_agent": "user_agent", "referer": "referer", "method": "method", "protocol": "protocol",
                "request_line": "path, query, method, host, format"}.get(fld, "path, query, method")
        combined = "|".join(f"(?:{r.pattern})" for r in rs)
        cases = ", ".join(f"CASE WHEN regexp_matches(v, {_lit(r.pattern)}) THEN {_lit(r.id)} END" for r in rs)
        # Distinct values first, the combined regex lets the benign ones through in one pass.
        con.execute(
            f"""CREATE OR REPLACE TEMP TABLE hits_{fld} AS
                SELECT {keys}, list_filter([{cases}], lambda x: x IS NOT NULL) AS ids
                FROM (SELECT {keys}, {value} AS v FROM (SELECT DISTINCT {keys} FROM {table}))
                WHERE regexp_matches(v, {_lit(combined)})"""
        )
        cond = " AND ".join(f"s.{k.strip()} IS NOT DISTINCT FROM h.{k.strip()}" for k in keys.split(","))
        parts.append(f"SELECT s.source, s.line_no, h.ids FROM {table} s JOIN hits_{fld} h ON {cond}")
    con.register("attack_rule_meta", pl.DataFrame({"id": [r.id for r in rules], "threat": [r.threat for r in rules]}))
    union = " UNION ALL ".join(parts) if parts else (
        "SELECT NULL::VARCHAR AS source, NULL::BIGINT AS line_no, []::VARCHAR[] AS ids WHERE false"
    )
    con.execute(
        f"""CREATE OR REPLACE TEMP TABLE request_attacks AS
            SELECT source, line_no, list_sort(list_distinct(list(rid))) AS attack_rules,
                   list_sort(list_distinct(list(m.threat))) AS attack_threats
            FROM (SELECT source, line_no, unnest(ids) AS rid FROM ({union})) u
            JOIN attack_rule_meta m ON m.id = u.rid
            GROUP BY source, line_no"""
    )


@dataclass
class ThreatConfig:
    """Thresholds of the behavioural threats. Each default is what separates the attack from
    ordinary use by a wide margin; a site tunes them with `--threats FILE` (YAML, same names)."""

    window_minutes: int = 10
    # A person mistypes a password a few times; 10 failed logins in 10 minutes is a script.
    brute_force_failures: int = 10
    # Stuffing spreads over many addresses, each trying a few. A person opens the login page
    # (and its assets) before posting it; a client that only posts failing logins, twice or
    # more, is a script. Five such addresses within an hour make a campaign.
    stuffing_min_failures: int = 2
    stuffing_addresses: int = 5
    campaign_minutes: int = 60
    # Card testers try many cards: 5 payment attempts in a window, half declined.
    card_attempts: int = 5
    card_decline_share: float = 0.5
    # Nobody signs up 3 times in 10 minutes. A session that touches nothing but the sign-up
    # form (no page, no asset) is not a person finding it; 5 of them from 3+ addresses within an
    # hour is a sign-up farm.
    signup_per_client: int = 3
    signup_burst: int = 5
    signup_burst_addresses: int = 3
    # Scanners: 8 distinct attack-rule paths, or 30 distinct paths answered 4xx mostly; a
    # script (a tool user agent, or none) needs only 3 distinct missing paths: it has no
    # stale links to follow.
    scan_rule_paths: int = 8
    scan_404_paths: int = 30
    scan_404_share: float = 0.7
    tool_404_paths: int = 3
    # Scraping: 200 product/search/listing/content/API pages at machine pace, with no assets, by a
    # browser user agent or an HTTP tool (declared crawlers crawl that way by nature); or a
    # network (IPv4 /16) of 10+ addresses sweeping 100+ of them with browser user agents, no
    # assets and no referrers (rotating proxies of one provider).
    scrape_pages: int = 200
    scrape_rate_per_min: float = 10.0
    scrape_net_clients: int = 10
    scrape_net_pages: int = 100
    # One address cycling through 5+ user agents within an hour, fetching no assets; or a
    # sweeping network (above) whose addresses share a pool of 5+ user agents.
    rotation_user_agents: int = 5
    # 300 requests in one minute from one client is a flood, not a visit.
    dos_per_minute: int = 300
    # Nobody submits a login form 5 times in one minute, whatever the server answers (some login
    # pages answer a failure with 200).
    login_posts_per_minute: int = 5
    # HTTP authentication (Basic, Digest): a person is asked once, mistypes once or twice; 5
    # refusals (401) in a window, answering most of what the client asked, is a password guesser.
    http_auth_failures: int = 5
    http_auth_failure_share: float = 0.8
    # Cache busting: one path asked for 20 times in a minute, each time with a different bare
    # token as its query (`/?8890121518`, no parameter name), makes every request miss the cache.
    cache_bypass_per_minute: int = 20

    @classmethod
    def load(cls, path: str | Path | None) -> ThreatConfig:
        if not path:
            return cls()
        doc = yaml.safe_load(Path(path).read_text(encoding="utf-8")) or {}
        names = {f.name for f in fields(cls)}
        bad = sorted(set(doc) - names)
        if bad:
            raise CatalogueError(f"--threats {path}: unknown setting(s) {', '.join(bad)}; known: {', '.join(sorted(names))}")
        return cls(**doc)


def client_threats(con: duckdb.DuckDBPyConnection, cfg: ThreatConfig, table: str = "sessionised",
                   browsers: str = "client_browsers", tools: str = "client_tools") -> pl.DataFrame:
    """`client_id, threat, reason` rows: every behavioural threat each client shows. `browsers`
    names a table of the client_ids whose user agent is a plain browser (identity none or
    undeclared), `tools` those of HTTP tools, libraries and empty user agents."""
    w = cfg.window_minutes
    win = f"time_bucket(INTERVAL {w} MINUTE, ts)"
    failed = "(status IN (401, 403, 429) OR status >= 400 AND status < 500)"
    sql = f"""
    WITH r AS (SELECT * FROM {table}),
    browsers AS (SELECT client_id FROM {browsers}),
    login AS (
        SELECT client_id, client_ip, site, {win} AS win, count(*) AS n, avg({failed}::INT) AS fail
        FROM r WHERE endpoint = 'login' AND method = 'POST' GROUP BY ALL
    ),
    brute AS (
        SELECT DISTINCT client_id, 'credential_stuffing' AS threat,
               'threat:brute_force:failed_logins=' || (n * fail)::INT || '/' || {w} || 'min' AS reason
        FROM login WHERE n * fail >= {cfg.brute_force_failures}
    ),
    hasty AS (  -- login posts at machine pace, whatever the answer
        SELECT DISTINCT client_id, 'credential_stuffing' AS threat,
               'threat:brute_force:login_posts=' || n || '/1min' AS reason
        FROM (SELECT client_id, date_trunc('minute', ts) AS m, count(*) AS n
              FROM r WHERE endpoint = 'login' AND method = 'POST' GROUP BY ALL)
        WHERE n >= {cfg.login_posts_per_minute}
    ),
    http_auth AS (  -- refused HTTP authentication, over and over
        SELECT DISTINCT client_id, 'credential_stuffing' AS threat,
               'threat:brute_force:http_auth_failures=' || n || '/' || {w} || 'min' AS reason
        FROM (SELECT client_id, {win} AS win, count(*) FILTER (WHERE status = 401) AS n, count(*) AS total
              FROM r GROUP BY ALL)
        WHERE n >= {cfg.http_auth_failures} AND n >= {cfg.http_auth_failure_share} * total
    ),
    blind AS (  -- clients that post failing logins and fetch nothing else
        SELECT client_id, any_value(site) AS site, any_value(client_ip) AS client_ip,
               count(*) FILTER (WHERE endpoint = 'login' AND method = 'POST' AND {failed}) AS failures,
               min(ts) AS first_ts
        FROM r GROUP BY client_id
        HAVING count(*) FILTER (WHERE NOT (endpoint = 'login' AND method = 'POST')) = 0
           AND count(*) FILTER (WHERE endpoint = 'login' AND method = 'POST' AND {failed}) >= 1
    ),
    campaign AS (
        SELECT site, time_bucket(INTERVAL {cfg.campaign_minutes} MINUTE, first_ts) AS win FROM blind
        GROUP BY ALL HAVING count(DISTINCT client_ip) >= {cfg.stuffing_addresses}
    ),
    stuffing AS (
        SELECT b.client_id, 'credential_stuffing' AS threat,
               'threat:credential_stuffing:login_posts_only,failed=' || b.failures AS reason
        FROM blind b WHERE b.failures >= {cfg.stuffing_min_failures}
        UNION ALL
        SELECT b.client_id, 'credential_stuffing',
               'threat:credential_stuffing:campaign>=' || {cfg.stuffing_addresses} || '_addresses/' || {cfg.campaign_minutes} || 'min'
        FROM blind b JOIN campaign c ON b.site = c.site
                                    AND time_bucket(INTERVAL {cfg.campaign_minutes} MINUTE, b.first_ts) = c.win
    ),
    pay AS (
        SELECT client_id, {win} AS win, count(*) AS n,
               avg((status = 402 OR status >= 400)::INT) AS declined
        FROM r WHERE endpoint = 'payment' AND method = 'POST' GROUP BY ALL
    ),
    cards AS (
        SELECT DISTINCT client_id, 'card_testing' AS threat,
               'threat:card_testing:payment_attempts=' || n || '/' || {w} || 'min,declined=' || round(declined, 2) AS reason
        FROM pay WHERE n >= {cfg.card_attempts} AND declined >= {cfg.card_decline_share}
    ),
    signup AS (
        SELECT client_id, client_ip, site, session_id, {win} AS win,
               count(*) FILTER (WHERE method = 'POST') AS n
        FROM r WHERE endpoint = 'signup' GROUP BY ALL
    ),
    lonely AS (  -- sessions that did nothing but touch the sign-up endpoint
        SELECT session_id FROM r GROUP BY session_id
        HAVING count(*) FILTER (WHERE endpoint IS DISTINCT FROM 'signup') = 0 AND count(*) <= 4
    ),
    lonely_signup AS (
        SELECT s.*, time_bucket(INTERVAL {cfg.campaign_minutes} MINUTE, s.win) AS hr
        FROM signup s JOIN lonely USING (session_id)
    ),
    burst AS (
        SELECT site, hr FROM lonely_signup
        GROUP BY ALL HAVING count(DISTINCT session_id) >= {cfg.signup_burst}
                        AND count(DISTINCT client_ip) >= {cfg.signup_burst_addresses}
    ),
    signups AS (
        SELECT DISTINCT client_id, 'fake_signup' AS threat,
               'threat:fake_signup:signups=' || n || '/' || {w} || 'min' AS reason
        FROM signup WHERE n >= {cfg.signup_per_client}
        UNION ALL
        SELECT DISTINCT s.client_id, 'fake_signup',
               'threat:fake_signup:burst>=' || {cfg.signup_burst} || '_from_' || {cfg.signup_burst_addresses} || '+_addresses/'
               || {cfg.campaign_minutes} || 'min'
        FROM lonely_signup s JOIN burst USING (site, hr)
    ),
    probes AS (
        SELECT r.client_id,
               count(DISTINCT r.path) FILTER (WHERE a.attack_rules IS NOT NULL) AS rule_paths,
               count(DISTINCT r.path) FILTER (WHERE r.status BETWEEN 400 AND 499) AS paths_4xx,
               avg((r.status BETWEEN 400 AND 499)::INT) AS share_4xx
        FROM r LEFT JOIN request_attacks a USING (source, line_no) GROUP BY r.client_id
    ),
    scans AS (
        SELECT client_id, 'vuln_scan' AS threat,
               CASE WHEN rule_paths >= {cfg.scan_rule_paths} THEN 'threat:vuln_scan:attack_paths=' || rule_paths
                    ELSE 'threat:vuln_scan:4xx_paths=' || paths_4xx || ',4xx_share=' || round(share_4xx, 2) END AS reason
        FROM probes
        WHERE rule_paths >= {cfg.scan_rule_paths}
           OR (paths_4xx >= {cfg.scan_404_paths} AND share_4xx >= {cfg.scan_404_share})
           OR (paths_4xx >= {cfg.tool_404_paths} AND share_4xx >= {cfg.scan_404_share}
               AND client_id IN (SELECT client_id FROM {tools}))
    ),
    sweep AS (
        SELECT client_id, any_value(client_ip) AS client_ip, any_value(site) AS site,
               any_value(user_agent) AS user_agent,
               count(*) FILTER (WHERE page_type IN ('product', 'search', 'listing', 'content', 'api')) AS pages,
               count(*) FILTER (WHERE page_type = 'static') AS assets,
               count(*) FILTER (WHERE referer IS NOT NULL) AS referred,
               count(*) / greatest((epoch(max(ts)) - epoch(min(ts))) / 60.0, 1.0) AS rate
        FROM r GROUP BY client_id
    ),
    scrape AS (
        SELECT client_id, 'abusive_scraping' AS threat,
               'threat:abusive_scraping:pages=' || pages || ',rate=' || round(rate, 1) || '/min,assets=0' AS reason
        FROM sweep WHERE pages >= {cfg.scrape_pages} AND rate >= {cfg.scrape_rate_per_min} AND assets = 0
          -- A crawler that says who it is (GPTBot, Bingbot) crawls at machine pace by nature; the
          -- threat is the one that hides behind a browser's or a library's user agent.
          AND (client_id IN (SELECT client_id FROM browsers) OR client_id IN (SELECT client_id FROM {tools}))
    ),
    bare AS (  -- browsers that fetch catalogue pages with no assets and no referrers
        SELECT s.*, regexp_extract(s.client_ip, '^([0-9]+\\.[0-9]+)\\.', 1) AS net
        FROM sweep s JOIN browsers b USING (client_id)
        WHERE s.assets = 0 AND s.pages > 0 AND s.referred = 0 AND s.client_ip NOT LIKE '%:%'
    ),
    nets AS (
        SELECT site, net, count(DISTINCT client_ip) AS addrs, sum(pages) AS pages,
               count(DISTINCT user_agent) AS uas
        FROM bare GROUP BY ALL
        HAVING count(DISTINCT client_ip) >= {cfg.scrape_net_clients} AND sum(pages) >= {cfg.scrape_net_pages}
    ),
    netscrape AS (
        SELECT s.client_id, 'abusive_scraping' AS threat,
               'threat:abusive_scraping:network=' || n.net || '.0.0/16,addresses=' || n.addrs || ',pages=' || n.pages AS reason
        FROM bare s JOIN nets n ON s.site = n.site AND s.net = n.net
    ),
    netrotation AS (  -- the sweeping network also cycles through a pool of user agents
        SELECT s.client_id, 'ua_rotation' AS threat,
               'threat:ua_rotation:network=' || n.net || '.0.0/16,user_agents=' || n.uas AS reason
        FROM bare s JOIN nets n ON s.site = n.site AND s.net = n.net
        WHERE n.uas >= {cfg.rotation_user_agents}
    ),
    -- Browser user agents only: a declared bot's user agent varies by itself (versions, a feed
    -- reader's subscriber count) without anyone hiding behind it.
    rot AS (
        SELECT site, client_ip, time_bucket(INTERVAL 1 HOUR, ts) AS hr, count(DISTINCT user_agent) AS uas,
               count(*) FILTER (WHERE page_type = 'static') AS assets
        FROM r WHERE client_id IN (SELECT client_id FROM browsers)
        GROUP BY ALL HAVING count(DISTINCT user_agent) >= {cfg.rotation_user_agents} AND assets = 0
    ),
    rotation AS (
        SELECT DISTINCT r.client_id, 'ua_rotation' AS threat,
               'threat:ua_rotation:user_agents=' || rot.uas || '/hour' AS reason
        FROM r JOIN rot ON r.site = rot.site AND r.client_ip = rot.client_ip
                        AND time_bucket(INTERVAL 1 HOUR, r.ts) = rot.hr
        WHERE r.client_id IN (SELECT client_id FROM browsers)
    ),
    flood AS (
        SELECT client_id, 'dos' AS threat, 'threat:dos:requests=' || max(n) || '/min' AS reason
        FROM (SELECT client_id, date_trunc('minute', ts) AS m, count(*) AS n FROM r GROUP BY ALL)
        GROUP BY client_id HAVING max(n) >= {cfg.dos_per_minute}
    ),
    bypass AS (  -- one path, a new bare token as query each time
        SELECT DISTINCT client_id, 'dos' AS threat,
               'threat:dos:cache_bypass=' || n || '_queries/1min' AS reason
        FROM (SELECT client_id, path, date_trunc('minute', ts) AS m, count(DISTINCT query) AS n
              FROM r WHERE query IS NOT NULL AND NOT contains(query, '=') GROUP BY ALL)
        WHERE n >= {cfg.cache_bypass_per_minute}
    )
    SELECT * FROM brute UNION ALL SELECT * FROM hasty UNION ALL SELECT * FROM http_auth
    UNION ALL SELECT * FROM bypass UNION ALL SELECT * FROM stuffing UNION ALL SELECT * FROM cards
    UNION ALL SELECT * FROM signups UNION ALL SELECT * FROM scans UNION ALL SELECT * FROM scrape
    UNION ALL SELECT * FROM netscrape UNION ALL SELECT * FROM netrotation UNION ALL SELECT * FROM rotation
    UNION ALL SELECT * FROM flood
    """
    return con.sql(sql).pl()


def request_threat_summary(con: duckdb.DuckDBPyConnection, per_threat: int = 3) -> pl.DataFrame:
    """Per client: the threats its requests' attack rules name, with up to `per_threat` rule ids
    each as reasons (`client_id, threat, reason`)."""
    return con.sql(
        f"""SELECT client_id, threat, 'attack:' || rid AS reason
            FROM (SELECT s.client_id, m.threat, a.rid,
                         row_number() OVER (PARTITION BY s.client_id, m.threat ORDER BY count(*) DESC, a.rid) AS k
                  FROM sessionised s
                  JOIN (SELECT source, line_no, unnest(attack_rules) AS rid FROM request_attacks) a USING (source, line_no)
                  JOIN attack_rule_meta m ON m.id = a.rid
                  GROUP BY s.client_id, m.threat, a.rid)
            WHERE k <= {per_threat}"""
    ).pl()


# --- robots.txt ------------------------------------------------------------------------------------


@dataclass
class RobotsGroup:
    agents: list[str]
    rules: list[tuple[bool, str]]  # (allow, path pattern)


def parse_robots(text: str) -> list[RobotsGroup]:
    """robots.txt -> groups of (user-agent tokens, Allow/Disallow rules), as RFC 9309 reads it:
    consecutive User-agent lines open a group; rules belong to the group above them."""
    groups: list[RobotsGroup] = []
    current: RobotsGroup | None = None
    last_was_agent = False
    for raw in text.splitlines():  # a robots.txt is small: a loop per line is fine here
        line = raw.split("#", 1)[0].strip()
        if ":" not in line:
            continue
        key, value = (x.strip() for x in line.split(":", 1))
        key = key.lower()
        if key == "user-agent":
            if current is None or not last_was_agent:
                current = RobotsGroup([], [])
                groups.append(current)
            current.agents.append(value.lower())
            last_was_agent = True
        elif key in ("allow", "disallow") and current is not None:
            last_was_agent = False
            if value or key == "allow":
                current.rules.append((key == "allow", value))
        else:
            last_was_agent = False
    return groups


def _robots_regex(pattern: str) -> str:
    """A robots path pattern (`*` any, `$` end) -> an anchored RE2 regex."""
    import re

    end = pattern.endswith("$")
    body = "".join(".*" if ch == "*" else re.escape(ch) for ch in (pattern[:-1] if end else pattern))
    return "^" + body + ("$" if end else "")


def robots_violations(con: duckdb.DuckDBPyConnection, robots_file: str | Path, tokens: pl.DataFrame,
                      table: str = "sessionised") -> pl.DataFrame:
    """`client_id, threat, reason` for automated clients fetching paths their group disallows.

    `tokens` has client_id and token (a robots.txt token the client's agent answers to, or `*`
    for automation that names none). The most specific group wins (the longest token that the
    client answers to), then within it the longest matching rule, Allow winning a tie.
    """
    p = Path(robots_file)
    try:
        groups = parse_robots(p.read_text(encoding="utf-8", errors="replace"))
    except OSError as e:
        raise CatalogueError(f"--robots {p}: cannot read it ({e.strerror})") from None
    rows = [(a, i) for i, g in enumerate(groups) for a in g.agents]
    if not rows or tokens.height == 0:
        return pl.DataFrame(schema={"client_id": pl.String, "threat": pl.String, "reason": pl.String})
    con.register("robots_groups", pl.DataFrame(rows, schema={"token": pl.String, "grp": pl.Int32}, orient="row"))
    con.register("client_tokens", tokens.with_columns(pl.col("token").str.to_lowercase()))
    # Each client's group: its own token's, else the `*` group.
    con.execute(
        """CREATE OR REPLACE TEMP TABLE client_group AS
           SELECT client_id, arg_max(grp, length(g.token)) AS grp, arg_max(g.token, length(g.token)) AS token
           FROM client_tokens t JOIN robots_groups g ON g.token = t.token OR (g.token = '*' AND t.token IS NOT NULL)
           GROUP BY client_id"""
    )
    cases = []
    for i, g in enumerate(groups):
        for allow, pat in g.rules:
            rx = _robots_regex(pat) if pat else "^$"
            score = len(pat) * 2 + (1 if allow else 0)  # longest rule wins; Allow wins ties
            cases.append(
                f"CASE WHEN c.grp = {i} AND regexp_matches(coalesce(s.path, '') || coalesce('?' || s.query, ''), "
                f"{_lit(rx)}) THEN {score} END"
            )
    if not cases:
        return pl.DataFrame(schema={"client_id": pl.String, "threat": pl.String, "reason": pl.String})
    best = f"greatest({', '.join(cases)})" if len(cases) > 1 else cases[0]
    return con.sql(
        f"""SELECT client_id, 'robots_violation' AS threat,
                   'robots:disallowed:' || any_value(token) || ':requests=' || count(*) AS reason
            FROM (SELECT s.client_id, c.token, {best} AS score
                  FROM {table} s JOIN client_group c USING (client_id)
                  WHERE s.page_type <> 'robots')
            WHERE score IS NOT NULL AND score % 2 = 0
            GROUP BY client_id"""
    ).pl()

