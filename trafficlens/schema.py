"""The one definition of the lake's columns (see DESIGN.md, "The lake")."""

from __future__ import annotations

import polars as pl

UTC_TS = pl.Datetime("us", "UTC")
# A list-of-strings column (threats, reasons), as polars types it.
STR_LIST = pl.List(pl.String())

# A normalised request, as ingested. Every events file carries exactly these columns, in this
# order, so polars and DuckDB can scan all partitions as one table.
EVENT_SCHEMA: dict[str, pl.DataType] = {
    "ts": UTC_TS,
    "site": pl.String(),
    "host": pl.String(),
    "client_ip": pl.String(),
    "remote_user": pl.String(),
    "method": pl.String(),
    "path": pl.String(),
    "query": pl.String(),
    "protocol": pl.String(),
    "status": pl.Int32(),
    "bytes": pl.Int64(),
    "referer": pl.String(),
    "user_agent": pl.String(),
    "request_time": pl.Float64(),
    "forwarded_for": pl.String(),
    "source": pl.String(),
    "line_no": pl.Int64(),
    # Format-specific extras: null when the log does not carry them.
    "server_port": pl.Int32(),
    "tls_protocol": pl.String(),
    "tls_cipher": pl.String(),
    "tls_fingerprint": pl.String(),
    "signature_agent": pl.String(),
    # The request's HTTP message signature headers (RFC 9421, Web Bot Auth), as logged.
    "signature": pl.String(),
    "signature_input": pl.String(),
    "format": pl.String(),
}
EVENT_COLUMNS: list[str] = list(EVENT_SCHEMA)
# What ingest derives from a client address before it pseudonymises it (--ip-privacy; DESIGN.md,
# "Privacy"): the operators' published range files holding the address, the most specific first
# (null where none were loaded, or where the address was kept). Only events written with privacy
# carry it, after EVENT_SCHEMA's columns.
PRIVACY_SCHEMA: dict[str, pl.DataType] = {"ip_ranges": STR_LIST}
# How ingest pseudonymises client addresses (`off` keeps them, also for a lake that remembers a choice).
IP_PRIVACY = ("truncate", "hash", "off")

REJECT_SCHEMA: dict[str, pl.DataType] = {
    "source": pl.String(),
    "line_no": pl.Int64(),
    "reason": pl.String(),
    "raw": pl.String(),
    "format": pl.String(),
    "ingested_at": UTC_TS,
}

# The lake's `alerts` table (trafficlens alerts): what fired, for which day; `recorded` is when.
ALERT_SCHEMA: dict[str, pl.DataType] = {
    "kind": pl.String(),
    "subject": pl.String(),
    "day": pl.Date(),
    "value": pl.Float64(),
    "baseline": pl.Float64(),
    "threshold": pl.Float64(),
    "message": pl.String(),
}
# The lake's `robots_txt` table: the versions of the site's robots.txt classify judged by
# (`start`: in force from, null for one given without a day).
ROBOTS_TXT_SCHEMA: dict[str, pl.DataType] = {
    "start": pl.Datetime("us", "UTC"),
    "name": pl.String(),
    "text": pl.String(),
}
MANIFEST_SCHEMA: dict[str, pl.DataType] = {
    "source": pl.String(),  # path as given (resolved), or "-" for standard input
    "fingerprint": pl.String(),  # blake2b of the first head_len decompressed bytes
    "head_len": pl.Int64(),
    "start_offset": pl.Int64(),  # decompressed byte offset this run started at
    "end_offset": pl.Int64(),  # decompressed bytes consumed after this run
    "tail_hash": pl.String(),  # blake2b of the last bytes before end_offset
    "start_line": pl.Int64(),
    "end_line": pl.Int64(),  # lines consumed after this run
    "lines": pl.Int64(),  # lines this run read: events + rejects + skipped
    "events": pl.Int64(),
    "rejects": pl.Int64(),
    "skipped": pl.Int64(),  # lines that are no log lines (blank, comments, directives)
    "skipped_reasons": pl.String(),  # JSON object of SKIP_REASONS -> count, e.g. {"blank": 2}
    "format": pl.String(),
    "format_state": pl.String(),  # W3C: the #Fields in force at end_offset, tab-separated
    "compression": pl.String(),
    "run_id": pl.String(),
    "ingested_at": UTC_TS,
}

# Why a line read is neither an event nor a reject: blank (empty or white space only), comment
# (starts with '#', outside W3C logs), directive (a W3C '#' line such as #Fields).
SKIP_REASONS = ("blank", "comment", "directive")

# Network evidence about a client's address (DESIGN.md, "Evidence and confidence"): the hosting
# provider whose published ranges hold it (catalogues/hosting_sources.yml), the service and region
# that provider names; the autonomous system and country from the databases the user supplies.
HOSTING = "hosting"
HOSTING_SERVICE = "hosting_service"
REGION = "region"
ASN = "asn"
AS_ORG = "as_org"
COUNTRY = "country"
NETWORK_SCHEMA: dict[str, pl.DataType] = {
    HOSTING: pl.String(),
    HOSTING_SERVICE: pl.String(),
    REGION: pl.String(),
    ASN: pl.Int64(),
    AS_ORG: pl.String(),
    COUNTRY: pl.String(),  # ISO 3166-1 alpha-2, upper case
}
# What checking a logged HTTP message signature (Web Bot Auth) can find: it verifies; it does not
# (a tampered or mis-signed request); it was outside its created..expires window when it arrived;
# its nonce was used before; its key is in no cached key directory; or it covers a component the
# log does not hold (so it cannot be checked).
SIGNATURE_STATUSES = ("valid", "invalid", "expired", "replayed", "unknown_key", "unverifiable")

# Labels added by classify (DESIGN.md, "Label vocabulary").
ACTOR_CLASSES = ("human", "crawler", "scraper", "agent")
PURPOSES = (
    "ai_training",
    "ai_search",
    "ai_assistant",
    "ai_agent",
    "search_engine",
    "seo",
    "archive",
    "monitoring",
    "preview",
    "feed",
    "security_scanner",
    "tool",
    "human",
    "unknown",
)
IDENTITIES = ("verified", "declared", "spoofed", "undeclared", "none")
# What an attack rule reads in a request (catalogues/attack_rules.yml, `kind`): an exploit or an
# attack tool it carries (fires on its own); a path a site may serve (fires only where the site
# does not); a file no site means to publish (fires either way: served, it is a leak).
ATTACK_RULE_KINDS = ("payload", "probe", "exposure")
THREATS = (
    "spoofed_identity",
    "vuln_scan",
    "sensitive_file",
    "path_traversal",
    "sqli",
    "xss",
    "backdoor",
    "admin_probe",
    "bad_user_agent",
    "credential_stuffing",
    "card_testing",
    "fake_signup",
    "abusive_scraping",
    "robots_violation",
    "ua_rotation",
    "dos",
)
# Threats only automation shows (a client that has one is automated, whatever its user agent),
# and attacks (a client making one is attack automation, not an AI agent doing a user's errand:
# an exploit or a probe of wp-login.php is nobody's errand).
AUTOMATED_THREATS = (
    "credential_stuffing",
    "card_testing",
    "fake_signup",
    "vuln_scan",
    "abusive_scraping",
    "dos",
    "ua_rotation",
    "bad_user_agent",
)
ATTACK_THREATS = (
    "credential_stuffing",
    "card_testing",
    "fake_signup",
    "vuln_scan",
    "sensitive_file",
    "path_traversal",
    "sqli",
    "xss",
    "backdoor",
    "admin_probe",
)
PAGE_TYPES = (
    "home",
    "product",
    "search",
    "listing",
    "content",
    "account",
    "auth",
    "cart",
    "checkout",
    "api",
    "static",
    "robots",
    "sitemap",
    "feed",
    "other",
)
# Page types that are pages a person reads (what a crawler "crawls" and a visit is made of), as
# opposed to assets, API calls, feeds and the files crawlers read for themselves.
PAGE_VIEW_TYPES = tuple(t for t in PAGE_TYPES if t not in ("static", "robots", "sitemap", "feed", "api"))
# Page types whose content a scraper harvests (listings, products, articles, search results, API data).
CONTENT_PAGE_TYPES = ("product", "search", "listing", "content", "api")

# The industry's split of AI-driven traffic, by kind (what reports and dashboards group it by).
AI_CATEGORIES = ("training_crawlers", "search_crawlers", "assistant_fetchers", "agents", "other_ai")
# Trend periods a report can be grouped by.
PERIODS = ("day", "week", "month")

# What the commands offer (the CLI's choices read these; each module that acts on them does too).
REPORT_FORMATS = ("table", "json", "markdown", "html")
ALERT_FORMATS = ("text", "json")
QUERY_FORMATS = ("table", "csv", "json", "parquet")
EXPORT_TARGETS = ("robots", "nginx", "apache", "caddy", "haproxy")
# The log formats and site kinds the simulator writes.
SIMULATED_FORMATS = ("combined", "common", "vhost_combined", "nginx_json", "w3c", "alb")
SITE_KINDS = ("shop", "media", "travel")
# Where a simulated site's assets come from: its origin, a CDN (none in its log), or a single-page app.
SITE_LAYOUTS = ("origin", "cdn", "spa")
# The behaviour model's candidate estimators, in the order a near tie in cross-validation goes.
ESTIMATORS = ("random_forest", "hist_gradient_boosting", "logistic_regression")

LABEL_SCHEMA: dict[str, pl.DataType] = {
    "client_id": pl.String(),
    "session_id": pl.String(),
    "page_type": pl.String(),
    "actor_class": pl.String(),
    "automated": pl.Boolean(),
    "ai_driven": pl.Boolean(),
    "purpose": pl.String(),
    "operator": pl.String(),
    "agent": pl.String(),
    "identity": pl.String(),
    "malicious": pl.Boolean(),
    "threats": pl.List(pl.String()),
    "confidence": pl.Float64(),
    "reasons": pl.List(pl.String()),
}
# What a request matched itself (its own attack rules, a path robots.txt disallows), beside its
# client's verdict (`threats`, `malicious`, `reasons`); in requests only.
REQUEST_OWN_SCHEMA: dict[str, pl.DataType] = {"request_threats": STR_LIST, "request_reasons": STR_LIST}
REQUEST_SCHEMA: dict[str, pl.DataType] = {**EVENT_SCHEMA, **LABEL_SCHEMA, **REQUEST_OWN_SCHEMA}
