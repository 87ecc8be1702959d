"""Behaviour: per-client and per-session features, computed in DuckDB over the labelled requests.

Features describe how a client uses the site, whatever its user agent says: pace and regularity,
what it fetches (pages, assets, favicon, robots.txt, sitemaps), how it navigates (referrers,
distinct paths, depth, page-type mix), how the site answers it (4xx, 5xx), and what its address
does besides (other user agents from it, other addresses of its network). The model in
`trafficlens.classify.model` reads the client features; sessions carry their own for the
dashboard and threat rules.
"""

from __future__ import annotations

import duckdb
import polars as pl

from trafficlens.schema import PAGE_VIEW_TYPES
from trafficlens.store import sql_literal

# Page types whose share of a client's requests is a feature (`mix_*`), in the order of FEATURES.
MIX = ("product", "search", "listing", "content", "account", "auth", "cart", "checkout", "api", "static", "home")

# The features the model reads, in order. Changing this list means retraining (`trafficlens train`).
FEATURES: tuple[str, ...] = (
    "log_requests",
    "log_sessions",
    "requests_per_session",
    "log_span_s",
    "rate_per_min",
    "max_per_min",
    "gap_mean_log",
    "gap_median_log",
    "gap_cv",
    "burstiness",
    "gap_min_log",
    "gap_all_median_log",
    "gap_all_cv",
    "html_share",
    "asset_per_page",
    "favicon",
    "referer_share",
    "internal_referer_share",
    "robots",
    "sitemap",
    "status_4xx",
    "status_5xx",
    "status_3xx",
    "post_share",
    "head_share",
    "bad_request_share",
    "distinct_path_ratio",
    "depth_mean",
    "query_share",
    "night_share",
    "bytes_log",
    *[f"mix_{m}" for m in MIX],
    "ip_user_agents_log",
    "net_clients_log",
    "net_same_ua_log",
    "page_gap_median_log",
    "page_gap_cv",
    "page_gap_max_log",
    "self_referral_share",
    "log_pages",
    "return_share",
)
# How a browser moves from page to page, whatever the site: its pages, their sizes, assets and
# beacons do not enter. The navigation model (`trafficlens.classify.model`) reads only these, so a
# site unlike the simulated ones still gets a fair reading of its visitors' pace and link choice.
NAV_FEATURES: tuple[str, ...] = (
    "page_gap_median_log",
    "page_gap_cv",
    "page_gap_max_log",
    "self_referral_share",
    "log_pages",
    "return_share",
)
NAV_MIN_PAGES = 5  # fewer page views say too little about a visitor's pace


def _network(ip: str) -> str:
    # /24 for IPv4, /48 for IPv6: where a scraper rotating addresses inside one provider shows. A
    # pseudonymised address (--ip-privacy) is NET~KEY: its network is what precedes the '~'.
    ip = f"split_part({ip}, '~', 1)"
    return (
        f"CASE WHEN {ip} LIKE '%:%' THEN array_to_string(string_split({ip}, ':')[1:3], ':') "
        f"ELSE regexp_replace({ip}, '\\.[0-9]+$', '') END"
    )


def _page_views() -> str:
    """SQL: the page types that are page views, as a list for `IN (...)`."""
    return ", ".join(sql_literal(t) for t in PAGE_VIEW_TYPES)


# --- feature families: each returns its CTEs, or its aggregates over `r` per client ----------------


ORDERED_COLUMNS = ("counted", "gap", "gap_all", "ref_host")
# The host a referrer names ('' where it names none, null without a referrer).
REF_HOST = "^[a-zA-Z]+://([^/:]+)"


def _requests(table: str) -> str:
    """CTE `r`: the requests of `table` that count, each with its gaps (within its session and its
    client), its referrer's host and whether it is a page view. `table` already says which requests
    count and their gaps (ORDERED_COLUMNS, from `trafficlens.classify.buckets.sessionise`, whose
    rule for range fetches is `sources_sql`'s)."""
    return f"""
    r AS (
        SELECT client_id, session_id, site, client_ip, user_agent, ts, source, line_no, path, query, method,
               status, bytes, referer, page_type, endpoint, host, protocol, gap, gap_all, ref_host,
               page_type IN ({_page_views()}) AS is_html
        FROM {table} WHERE counted
    )"""


def sources_sql(table: str, by: str = "session_id", order: str = "ts, source, line_no") -> str:
    """CTEs `ranged`, `whole`, `src`: the requests of `table` that count. `by` the visit a range
    fetch belongs to: its session, or (before sessions are known) its client; `order` the order
    in which the first range fetch of a file is taken."""
    # A PDF or video viewer fetches one file in byte ranges (206), often dozens in a few seconds:
    # that is one read of one document, not a burst of page views. A range fetch only counts
    # where its session has no other request for the path, and then only the first.
    return f"""
    ranged AS (
        SELECT * FROM {table} WHERE status = 206
        QUALIFY row_number() OVER (PARTITION BY {by}, path ORDER BY {order}) = 1
    ),
    -- Of those files, the ones the session also fetched whole (joined on the few ranged ones).
    whole AS (
        SELECT DISTINCT x.{by}, x.path
        FROM {table} x JOIN (SELECT DISTINCT {by}, path FROM ranged) g
          ON x.{by} = g.{by} AND x.path IS NOT DISTINCT FROM g.path
        WHERE x.status IS DISTINCT FROM 206
    ),
    src AS (
        SELECT * FROM {table} WHERE status IS DISTINCT FROM 206
        UNION ALL BY NAME
        SELECT g.* FROM ranged g ANTI JOIN whole w
          ON g.{by} = w.{by} AND g.path IS NOT DISTINCT FROM w.path
    )"""


def _volume() -> str:
    """How much a client asks for, over how long."""
    return """
               count(*) AS requests, count(DISTINCT session_id) AS sessions,
               epoch(max(ts)) - epoch(min(ts)) AS span_s"""


def _peak_rate() -> str:
    """CTE `per_min`: the most requests a client made in one minute."""
    return """
    per_min AS (
        SELECT client_id, max(n) AS max_per_min
        FROM (SELECT client_id, date_trunc('minute', ts) AS m, count(*) AS n FROM r GROUP BY ALL)
        GROUP BY client_id
    )"""


def _timing() -> str:
    """Pace and regularity: the gaps between requests, within sessions and across them."""
    return """
               avg(gap) AS gap_mean, quantile_cont(gap, 0.5) AS gap_median, stddev_pop(gap) AS gap_std,
               min(gap) AS gap_min, quantile_cont(gap_all, 0.5) AS gap_all_median,
               stddev_pop(gap_all) / nullif(avg(gap_all), 0) AS gap_all_cv"""


def _assets() -> str:
    """Pages against the assets and favicon a browser fetches with them."""
    return """
               avg(is_html::INT) AS html_share,
               sum((page_type = 'static')::INT) AS assets, sum(is_html::INT) AS pages,
               max((lower(path) LIKE '%favicon%')::INT) AS favicon"""


def _referrers() -> str:
    """How often a request names where it came from, and how often that is the site itself."""
    return """
               avg((referer IS NOT NULL)::INT) AS referer_share,
               avg((ref_host <> '' AND (ref_host = host OR ref_host = site))::INT) AS internal_referer_share"""


def _crawler_files() -> str:
    """The files crawlers read for themselves."""
    return """
               max((page_type = 'robots')::INT) AS robots,
               max((page_type = 'sitemap')::INT) AS sitemap"""


def _errors() -> str:
    """How the site answers: client errors, server errors, redirects."""
    return """
               avg((status BETWEEN 400 AND 499)::INT) AS status_4xx,
               avg((status >= 500)::INT) AS status_5xx,
               avg((status BETWEEN 300 AND 399)::INT) AS status_3xx"""


def _methods() -> str:
    """Form posts, HEAD requests and requests the server could not read."""
    return """
               -- Form posts: a page's scripts posting beacons or API calls are not the client's doing.
               avg((method = 'POST')::INT) FILTER (WHERE page_type IS DISTINCT FROM 'api') AS post_share,
               avg((method = 'HEAD')::INT) AS head_share,
               avg((method IS NULL)::INT) AS bad_request_share"""


def _paths() -> str:
    """What a client asks for: how many distinct paths, how deep, with queries."""
    return """
               count(DISTINCT path) / count(*) AS distinct_path_ratio,
               avg(length(path) - length(replace(path, '/', ''))) AS depth_mean,
               avg((query IS NOT NULL)::INT) AS query_share"""


def _habits() -> str:
    """When a client comes (at night), and how much each answer weighs."""
    return """
               avg((hour(ts) < 6)::INT) AS night_share,
               avg(coalesce(bytes, 0)) AS bytes_mean"""


def _page_mix() -> str:
    """The share of each page type in MIX."""
    return ",".join(f"\n               avg((page_type = {sql_literal(m)})::INT) AS mix_{m}" for m in MIX)


# What a client's features read of other clients: aggregates over the whole log (per site, address,
# network, form page), each a query over `r`. Run in client buckets, they are computed once over
# every bucket and read by each as a `shared_<name>` table (SHARED_TABLES).
SHARED_CTES = {
    # The user agents of each address; the addresses of each network, per user agent and in all.
    "ip": "SELECT site, client_ip, count(DISTINCT user_agent) AS ip_user_agents FROM r GROUP BY ALL",
    "nets": f"""SELECT site, {_network("client_ip")} AS net, user_agent, count(DISTINCT client_ip) AS same_ua
        FROM r GROUP BY ALL""",
    "netall": "SELECT site, net, sum(same_ua) AS clients FROM nets GROUP BY ALL",
    # The site's own host, where the log has none: the host its referrers name most (the first by
    # name among equals, so that every engine and run picks the same).
    "home": """SELECT site, ref_host AS ref_home
        FROM (SELECT site, ref_host, count(*) AS n FROM r WHERE ref_host <> '' GROUP BY ALL)
        QUALIFY row_number() OVER (PARTITION BY site ORDER BY n DESC, ref_host) = 1""",
    # How many clients loaded each form page (a browser posts a form after loading it).
    "form_pages": """SELECT site, path, count(DISTINCT client_id) AS loaders
        FROM r WHERE endpoint IS NOT NULL AND method = 'GET' AND status < 400 GROUP BY ALL""",
}
SHARED_TABLES = {name: f"shared_{name}" for name in SHARED_CTES}
# The shared aggregates per address and network. Every client has a request the features count, so
# each is a count over the clients (site, address, user agent), and a client's own counts can be
# computed once with the clients and handed to its bucket (`address_counts_sql`), rather than
# grouped over every request and looked up by every bucket.
ADDRESS_CTES = ("ip", "nets", "netall")
# The others, over the whole log's requests (the sites' home hosts, their form pages): computed once
# before the buckets and read by every bucket as they are.
LOG_CTES = tuple(name for name in SHARED_CTES if name not in ADDRESS_CTES)
# Per client: its network and the counts of ADDRESS_CTES for its keys.
ADDRESS_COUNTS = ("net", "ip_user_agents", "same_ua", "net_clients")


def address_counts_sql(clients: str) -> str:
    """SQL: the rows of `clients` (one per site, address and user agent) with ADDRESS_COUNTS: user
    agents of its address, addresses of its network with its user agent, and in all (as
    SHARED_CTES count them: a null address or user agent is not counted)."""
    return f"""SELECT *, count(user_agent) OVER (PARTITION BY site, client_ip) AS ip_user_agents,
               count(client_ip) OVER (PARTITION BY site, net, user_agent) AS same_ua,
               count(client_ip) OVER (PARTITION BY site, net) AS net_clients
        FROM (SELECT *, {_network("client_ip")} AS net FROM {clients})"""


# The raw aggregates the evidence families read (trafficlens.classify.evidence), not the models.
EVIDENCE_INPUTS = (
    "pages",
    "assets",
    "favicon",
    "page_gaps",
    "page_gap_max",
    "page_gap_cv",
    "screen_gaps",
    "screen_gap_max",
    "screen_gap_cv",
    "form_fill_min_s",
    "pay_fill_min_s",
    "blind_posts",
    "max_views_per_day",
    "http10",
    "proto_requests",
    "switched_visits",
)


# The keys by which the large shared tables are read: only the rows of the bucket's own addresses,
# networks and user agents (a join would otherwise build a table of the whole log's per bucket).
_SHARED_KEYS = {
    "ip": {"site": "site", "client_ip": "client_ip"},
    "nets": {"site": "site", "net": _network("client_ip"), "user_agent": "user_agent"},
    "netall": {"site": "site", "net": _network("client_ip")},
}


def _shared(name: str, shared: bool) -> str:
    """The CTE `name` of SHARED_CTES: computed from `r`, or read from its shared table (the rows
    whose keys occur in `r`)."""
    if not shared:
        return f"{name} AS ({SHARED_CTES[name]})"
    keys = _SHARED_KEYS.get(name)
    if keys is None:
        return f"{name} AS (SELECT * FROM {SHARED_TABLES[name]})"
    mine = ", ".join(f"{expr} AS {key}" for key, expr in keys.items())
    on = " AND ".join(f"s.{key} IS NOT DISTINCT FROM k.{key}" for key in keys)
    return f"""{name} AS (
        SELECT s.* FROM {SHARED_TABLES[name]} s
        SEMI JOIN (SELECT DISTINCT {mine} FROM (SELECT DISTINCT site, client_ip, user_agent FROM r)) k ON {on})"""


def _address_sharing(shared: bool = False) -> str:
    """CTEs `ip`: the user agents of each address; `nets`, `netall`: the addresses of each network,
    per user agent and in all."""
    return ",\n    ".join(_shared(n, shared) for n in ("ip", "nets", "netall"))


# A request's referrer names the site itself (its host, or where the log names none, the host its
# referrers name most); null without a referrer. Over `r` joined to `home`.
_OWN_REFERRER = "ref_host = coalesce(host, ref_home)"
# The page of the site a request's referrer names (its path and query; '/' for the bare host),
# null where the referrer is another site's or absent.
_REF_PAGE = f"""CASE WHEN {_OWN_REFERRER} THEN coalesce(nullif(regexp_extract(
                   referer, '^[a-zA-Z][a-zA-Z0-9+.-]*://[^/?#]*([^#]*)', 1), ''), '/') END"""


def _navigation(shared: bool = False) -> str:
    """CTEs `pages`: how a client moves from page to page (time on a page, links to the page
    itself, returns to a page it was on); `screens`: the time between a single-page app's screens."""
    # Page to page: the time a visitor spends on a page, which beacons and assets in between do
    # not shorten; and page views whose referrer is the page itself (a click on a link to the
    # page already open, which people rarely make and a bot picking random links makes often).
    # `home`: the site's own host, where the log has none: the host its referrers name most.
    # `seen`, `pg`: back to the list: a person reads round a hub (a listing, search results),
    # going back to it for the next item: re-requested (A B A), or shown from the browser's cache,
    # when the next page names as its referrer a page the visit was on, or was sent from, before
    # the one it was just on (so do pages opened from one list in tabs). A bot following random
    # links names the page it was just on, and comes back only as often as a page links back.
    # `sc0`..`screens`: a single-page app loads its document once, then each screen's data from its
    # API (GET; beacons post), and a browser names the document's current address (the app's
    # route) as the referrer of those calls. A screen's gap is the time from the visitor's last
    # move (to any screen, back to a list too) to its first showing. First showings only: calls of
    # pages open in several tabs interleave, and polling repeats one screen's calls.
    return f"""
    {_shared("home", shared)},
    pg0 AS (
        SELECT client_id, session_id, ts, source, line_no, path || coalesce('?' || query, '') AS page,
               {_REF_PAGE} AS ref_page
        FROM r LEFT JOIN home USING (site) WHERE is_html AND method = 'GET'
    ),
    seen AS (
        SELECT session_id, v, min(ts) AS first_ts FROM (
            SELECT session_id, page AS v, ts FROM pg0
            UNION ALL
            SELECT session_id, ref_page AS v, ts FROM pg0 WHERE ref_page IS NOT NULL
        ) GROUP BY ALL
    ),
    pg1 AS (
        SELECT client_id, session_id, ts, page, ref_page, epoch(ts) - lag(epoch(ts)) OVER w AS page_gap,
               lag(page, 1) OVER w AS p1, lag(page, 2) OVER w AS p2
        FROM pg0 WINDOW w AS (PARTITION BY session_id ORDER BY ts, source, line_no)
    ),
    pg AS (
        SELECT g.client_id, g.page_gap, g.ref_page = g.page AS self_ref,
               CASE WHEN g.p1 IS NOT NULL THEN
                   coalesce(g.page = g.p2 AND g.page <> g.p1, false)
                   OR coalesce(g.ref_page <> g.p1 AND s.first_ts < g.ts, false)
               END AS back_step
        FROM pg1 g LEFT JOIN seen s ON s.session_id = g.session_id AND s.v = g.ref_page
    ),
    pages AS (
        SELECT client_id, count(page_gap) AS page_gaps, quantile_cont(page_gap, 0.5) AS page_gap_median,
               stddev_pop(page_gap) / nullif(avg(page_gap), 0) AS page_gap_cv, max(page_gap) AS page_gap_max,
               avg(coalesce(self_ref, false)::INT) AS self_referral_share, avg(back_step::INT) AS return_share
        FROM pg GROUP BY client_id
    ),
    sc0 AS (
        SELECT client_id, session_id, ts, source, line_no,
               {_REF_PAGE} AS screen
        FROM r LEFT JOIN home USING (site) WHERE page_type = 'api' AND method = 'GET'
    ),
    sc1 AS (
        SELECT *, lag(screen) OVER (PARTITION BY session_id ORDER BY ts, source, line_no) AS prev
        FROM sc0 WHERE screen IS NOT NULL
    ),
    sc2 AS (
        SELECT client_id, epoch(ts) - lag(epoch(ts)) OVER w AS gap,
               row_number() OVER (PARTITION BY session_id, screen ORDER BY ts, source, line_no) AS shown
        FROM sc1 WHERE prev IS DISTINCT FROM screen WINDOW w AS (PARTITION BY session_id ORDER BY ts, source, line_no)
    ),
    screens AS (
        SELECT client_id, count(gap) AS screen_gaps, max(gap) AS screen_gap_max,
               stddev_pop(gap) / nullif(avg(gap), 0) AS screen_gap_cv
        FROM sc2 WHERE shown = 1 GROUP BY client_id
    )"""


# Many people behind one address and one browser build (a carrier's NAT, an office) can view
# hundreds of distinct pages in a day between them, but mostly the same popular ones, each many
# times; one program sweeping the site views most of its pages once.
SWEEP_SHARE = 0.5


def _evidence(shared: bool = False) -> str:
    """CTEs `forms`: the fastest a client submitted a sign-up form, and a payment form, after
    loading it;
    `protocols`: its HTTP/1.0 requests, and its visits that used both HTTP/1.0 and a later
    version; `daily`: the most distinct pages it viewed in one day of sweeping (at least half of
    its page views that day to pages it had not viewed yet). Read by `trafficlens.classify.evidence`,
    not by the model: what a person cannot do (fill in a form in two seconds, read hundreds of
    pages a day) rather than a style."""
    # The form's page and its POST share a path (GET /register, POST /register); a site posting
    # elsewhere gives no reading, never a false one. Logins are left out: a password manager fills
    # and submits a login form in a second.
    # Protocol: every browser since the last century speaks HTTP/1.1 or later; HTTP/1.0 comes
    # from a proxy between the browser and the site (then for every request through it) or from a
    # script. A visit that switches between the two is two programs, not one browser.
    # A form posted without its page: where the site serves the page to people (three or more
    # clients loaded it), a browser has to load it before it can post it, this client never did;
    # and the post names no page of the site as its referrer. A browser's post names the page it
    # was on: a person whose address changed since loading the form, or a single-page app whose
    # screens are drawn without loading their pages, names it; a script posting blind names none.
    return f"""
    form_posts AS (
        SELECT client_id, site, path, endpoint, method,
               coalesce({_OWN_REFERRER}, false) AS own_referrer,
               epoch(ts) - max(CASE WHEN method = 'GET' THEN epoch(ts) END) OVER (
                   PARTITION BY session_id, path ORDER BY ts, source, line_no
                   ROWS BETWEEN UNBOUNDED PRECEDING AND 1 PRECEDING) AS fill,
               count(*) FILTER (WHERE method = 'GET') OVER (
                   PARTITION BY client_id, path ORDER BY ts, source, line_no
                   ROWS BETWEEN UNBOUNDED PRECEDING AND 1 PRECEDING) AS loaded
        FROM r LEFT JOIN home USING (site) WHERE endpoint IS NOT NULL
    ),
    {_shared("form_pages", shared)},
    forms AS (
        SELECT client_id,
               min(fill) FILTER (WHERE endpoint = 'signup') AS form_fill_min_s,
               min(fill) FILTER (WHERE endpoint = 'payment') AS pay_fill_min_s,
               count(*) FILTER (WHERE loaded = 0 AND NOT own_referrer AND coalesce(fp.loaders, 0) >= 3) AS blind_posts
        FROM form_posts LEFT JOIN form_pages fp USING (site, path)
        WHERE method = 'POST' GROUP BY client_id
    ),
    proto_visits AS (
        SELECT client_id, session_id,
               count(*) FILTER (WHERE protocol IN ('HTTP/1.0', 'HTTP/0.9')) AS old,
               count(*) FILTER (WHERE protocol LIKE 'HTTP/%' AND protocol NOT IN ('HTTP/1.0', 'HTTP/0.9')) AS new
        FROM r GROUP BY ALL
    ),
    protocols AS (
        SELECT client_id, sum(old)::BIGINT AS http10, sum(old + new)::BIGINT AS proto_requests,
               count(*) FILTER (WHERE old > 0 AND new > 0) AS switched_visits
        FROM proto_visits GROUP BY client_id
    ),
    daily AS (
        SELECT client_id, coalesce(max(n) FILTER (WHERE n >= {SWEEP_SHARE} * v), 0) AS max_views_per_day FROM (
            SELECT client_id, ts::DATE AS d, count(DISTINCT path) AS n, count(*) AS v FROM r
            WHERE is_html OR (page_type = 'api' AND method = 'GET' AND referer IS NULL) GROUP BY ALL
        ) GROUP BY client_id
    )"""


# Per-client aggregates, in the order of their columns.
_AGGREGATES = (_volume, _timing, _assets, _referrers, _crawler_files, _errors, _methods, _paths, _habits, _page_mix)


def client_features_sql(table: str = "sessionised", shared: bool = False) -> str:
    """One row per client_id with FEATURES (and a few raw counts) from `table`, sessionised requests
    (`trafficlens.classify.buckets.sessionise`'s columns). With `shared`, what the features read of
    other clients comes from the SHARED_TABLES (`shared_aggregates_sql` over the whole log), so
    that `table` can hold only some clients: one bucket of them."""
    aggregates = ",".join(family() for family in _AGGREGATES)
    return f"""
    WITH
    {_requests(table)},
    {_peak_rate()},
    {_address_sharing(shared)},
    {_navigation(shared)},
    {_evidence(shared)},
    agg AS (
        SELECT client_id, any_value(site) AS site, any_value(client_ip) AS client_ip,
               any_value(user_agent) AS user_agent,{aggregates}
        FROM r GROUP BY client_id
    )
    SELECT a.*, p.max_per_min, i.ip_user_agents, coalesce(na.clients, 1) AS net_clients,
           coalesce(n.same_ua, 1) AS net_same_ua, pa.page_gap_median, pa.page_gap_cv, pa.page_gap_max,
           pa.self_referral_share, pa.return_share, f.form_fill_min_s, f.pay_fill_min_s,
           coalesce(f.blind_posts, 0) AS blind_posts,
           coalesce(pa.page_gaps, 0) AS page_gaps, coalesce(sc.screen_gaps, 0) AS screen_gaps, sc.screen_gap_max,
           sc.screen_gap_cv, coalesce(d.max_views_per_day, 0) AS max_views_per_day,
           coalesce(pr.http10, 0) AS http10, coalesce(pr.proto_requests, 0) AS proto_requests,
           coalesce(pr.switched_visits, 0) AS switched_visits
    FROM agg a
    JOIN per_min p USING (client_id)
    LEFT JOIN pages pa USING (client_id)
    LEFT JOIN screens sc USING (client_id)
    LEFT JOIN forms f USING (client_id)
    LEFT JOIN daily d USING (client_id)
    LEFT JOIN protocols pr USING (client_id)
    LEFT JOIN ip i ON i.site = a.site AND i.client_ip IS NOT DISTINCT FROM a.client_ip
    LEFT JOIN nets n ON n.site = a.site AND n.net IS NOT DISTINCT FROM ({_network("a.client_ip")})
                    AND n.user_agent IS NOT DISTINCT FROM a.user_agent
    LEFT JOIN netall na ON na.site = a.site AND na.net IS NOT DISTINCT FROM ({_network("a.client_ip")})
    """


def shared_aggregates_sql(name: str, table: str = "sessionised") -> str:
    """The query of one of SHARED_CTES over every request of `table` (every bucket, before
    sessions): the `r` the features read, less the gaps between requests, which the aggregates do
    not use, and with a range fetch counted once per client rather than per session (the same
    aggregates, but for the referrer hosts `home` counts among a file's repeated range fetches)."""
    needs = {"netall": ["nets"]}.get(name, [])
    ctes = [f"{n} AS ({SHARED_CTES[n]})" for n in needs]
    return f"""
    WITH {sources_sql(table, by="client_id")},
    r AS (
        SELECT site, client_id, client_ip, user_agent, path, method, status, endpoint,
               regexp_extract(referer, {sql_literal(REF_HOST)}, 1) AS ref_host
        FROM src
    ){"".join(", " + c for c in ctes)}
    {SHARED_CTES[name]}"""


def model_inputs(raw: pl.DataFrame) -> pl.DataFrame:
    """Raw per-client aggregates -> the FEATURES columns (logs and ratios; nulls as -1 where a
    gap does not exist, e.g. a one-request client)."""

    def log1p(c: str) -> pl.Expr:
        return pl.col(c).cast(pl.Float64).fill_null(0).log1p()

    span_min = (pl.col("span_s").cast(pl.Float64) / 60).clip(lower_bound=1.0)
    out = raw.with_columns(
        log_requests=log1p("requests"),
        log_sessions=log1p("sessions"),
        requests_per_session=pl.col("requests") / pl.col("sessions"),
        log_span_s=log1p("span_s"),
        rate_per_min=pl.col("requests") / span_min,
        gap_mean_log=pl.col("gap_mean").log1p().fill_null(-1),
        gap_median_log=pl.col("gap_median").log1p().fill_null(-1),
        gap_cv=(pl.col("gap_std") / pl.col("gap_mean")).fill_nan(None).fill_null(-1),
        # Burstiness (Goh & Barabasi): -1 periodic, 0 random, towards 1 bursty.
        burstiness=((pl.col("gap_std") - pl.col("gap_mean")) / (pl.col("gap_std") + pl.col("gap_mean")))
        .fill_nan(None)
        .fill_null(-2),
        gap_min_log=pl.col("gap_min").log1p().fill_null(-1),
        gap_all_median_log=pl.col("gap_all_median").log1p().fill_null(-1),
        gap_all_cv=pl.col("gap_all_cv").fill_nan(None).fill_null(-1),
        asset_per_page=pl.col("assets") / pl.col("pages").clip(lower_bound=1),
        bytes_log=log1p("bytes_mean"),
        ip_user_agents_log=log1p("ip_user_agents"),
        net_clients_log=log1p("net_clients"),
        net_same_ua_log=log1p("net_same_ua"),
        page_gap_median_log=pl.col("page_gap_median").log1p().fill_null(-1),
        page_gap_cv=pl.col("page_gap_cv").fill_nan(None).fill_null(-1),
        page_gap_max_log=pl.col("page_gap_max").log1p().fill_null(-1),
        log_pages=log1p("pages"),
    )
    return out.with_columns([pl.col(f).cast(pl.Float64).fill_null(-1) for f in FEATURES])


def client_features(con: duckdb.DuckDBPyConnection, table: str = "sessionised", shared: bool = False) -> pl.DataFrame:
    """client_id, site, client_ip, user_agent, the raw aggregates and FEATURES, one row per client
    (`shared`: as in `client_features_sql`)."""
    return model_inputs(con.sql(client_features_sql(table, shared)).pl())


def session_features_sql(table: str = "sessionised") -> str:
    """Per-session aggregates (the sessions table's behaviour columns)."""
    return f"""
        SELECT session_id, any_value(client_id) AS client_id, any_value(site) AS site,
               any_value(client_ip) AS client_ip, any_value(user_agent) AS user_agent,
               min(ts) AS start, max(ts) AS "end", epoch(max(ts)) - epoch(min(ts)) AS duration_s,
               count(*) AS requests, sum(bytes) AS bytes, count(DISTINCT path) AS distinct_paths,
               sum((page_type IN ({_page_views()}))::INT) AS pages, sum((page_type = 'static')::INT) AS assets,
               max((lower(path) LIKE '%favicon%')::INT)::BOOLEAN AS favicon,
               max((page_type = 'robots')::INT)::BOOLEAN AS robots,
               avg((referer IS NOT NULL)::INT) AS referer_share,
               avg((status BETWEEN 400 AND 499)::INT) AS status_4xx,
               avg((method = 'POST')::INT) AS post_share,
               -- Ties in time go to the request first in the log, however DuckDB's threads read them.
               arg_min(path, (ts, source, line_no)) AS landing_path,
               arg_min(referer, (ts, source, line_no)) AS landing_referer,
               list(DISTINCT page_type ORDER BY page_type) AS page_types
        FROM {table} GROUP BY session_id
    """
