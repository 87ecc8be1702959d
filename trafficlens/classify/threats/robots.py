"""robots.txt violations: automated clients fetching paths the site's robots.txt disallows them,
read as RFC 9309 reads it."""

from __future__ import annotations

import datetime as dt
import re
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

import duckdb
import polars as pl

from trafficlens.classify.agents import Catalogue
from trafficlens.errors import CatalogueError
from trafficlens.schema import ROBOTS_TXT_SCHEMA
from trafficlens.store import sql_literal

# The rows a threat check finds, typed for when it finds none.
FINDING_SCHEMA: dict[str, pl.DataType] = {"client_id": pl.String(), "threat": pl.String(), "reason": pl.String()}


@dataclass
class RobotsGroup:
    agents: list[str]
    rules: list[tuple[bool, str]]  # (allow, path pattern)
    # Usage preferences the group states for the whole site (Cloudflare's Content Signals,
    # `Content-Signal: search=yes, ai-train=no`; the IETF AIPREF vocabulary, `Content-Usage:
    # train-ai=n`): key -> allowed. Statements scoped to a path are left out.
    signals: dict[str, bool] = field(default_factory=dict)


# The usage keys of both vocabularies, and the purposes (schema.PURPOSES) each one speaks of.
SIGNAL_PURPOSES: dict[str, tuple[str, ...]] = {
    "search": ("search_engine", "ai_search"),
    "ai-input": ("ai_assistant", "ai_agent", "ai_search"),
    "ai-train": ("ai_training",),
    "train-ai": ("ai_training",),
    "train-genai": ("ai_training",),
    "ai-use": ("ai_assistant", "ai_agent"),
}
_YES = {"yes", "y", "true", "1"}
_NO = {"no", "n", "false", "0"}
ROBOTS_VERSION_NAME = re.compile(r"^robots-(\d{4}-\d{2}-\d{2})\.txt$")


@dataclass
class RobotsVersion:
    """One robots.txt as it was: in force from `start` (UTC midnight; None: always) until the next."""

    start: dt.datetime | None
    name: str
    text: str

    @property
    def groups(self) -> list[RobotsGroup]:
        return parse_robots(self.text)


# Where a site's robots.txt comes from: one file, a folder of dated versions, or dated files
# given one by one (`robots-YYYY-MM-DD.txt`, or any file as `PATH@YYYY-MM-DD`).
RobotsSource = str | Path | Sequence[str | Path]


def _day(text: str, where: object) -> dt.datetime:
    try:
        return dt.datetime.fromisoformat(text).replace(tzinfo=dt.UTC)
    except ValueError:
        raise CatalogueError(f"--robots {where}: {text} is not a date (YYYY-MM-DD)") from None


def _read(p: Path) -> str:
    if not p.exists():
        raise CatalogueError(f"--robots {p}: no such file or folder")
    try:
        return p.read_text(encoding="utf-8", errors="replace")
    except OSError as e:
        raise CatalogueError(f"--robots {p}: cannot read it ({e.strerror})") from None


def _dated_file(item: str | Path) -> RobotsVersion:
    """One version given alone: `robots-YYYY-MM-DD.txt`, or `PATH@YYYY-MM-DD`."""
    text = str(item)
    path, at, day = text.rpartition("@")
    if at and not Path(text).exists():
        p = Path(path)
        return RobotsVersion(_day(day, text), p.name, _read(p))
    p = Path(text)
    m = ROBOTS_VERSION_NAME.match(p.name)
    if not m:
        raise CatalogueError(f"--robots {p}: name each version robots-YYYY-MM-DD.txt, or give it as {p}@YYYY-MM-DD")
    return RobotsVersion(_day(m.group(1), p), p.name, _read(p))


def load_robots(source: RobotsSource) -> list[RobotsVersion]:
    """The versions of the site's robots.txt, in time order: one file (in force throughout), a
    folder of `robots-YYYY-MM-DD.txt`, or several dated files; each version is in force from its
    day (UTC) until the next one's."""
    if not isinstance(source, (str, Path)):
        items = list(source)
        if len(items) != 1:
            versions = sorted((_dated_file(i) for i in items), key=lambda v: v.start or dt.datetime.min)
            days = [v.start for v in versions]
            if len(set(days)) != len(days):
                raise CatalogueError("--robots: two versions for one day")
            return versions
        source = items[0]
    p = Path(source)
    if "@" in str(source) and not p.exists():
        return [_dated_file(source)]
    if p.is_dir():
        try:
            dated = sorted((m.group(1), f) for f in p.iterdir() if (m := ROBOTS_VERSION_NAME.match(f.name)))
        except OSError as e:
            raise CatalogueError(f"--robots {p}: cannot read it ({e.strerror})") from None
        if not dated:
            raise CatalogueError(f"--robots {p}: no robots-YYYY-MM-DD.txt in this folder")
        return [RobotsVersion(_day(day, f), f.name, _read(f)) for day, f in dated]
    return [RobotsVersion(None, p.name, _read(p))]


def _signals(value: str) -> dict[str, bool]:
    """`search=yes, ai-train=no` (or `train-ai=n`) -> {key: allowed}; a leading path scopes the
    statement to part of the site, which is not read here."""
    if value.startswith("/"):
        return {}
    out = {}
    for part in re.split(r"[,;\s]+", value):
        if "=" not in part:
            continue
        key, _, v = part.partition("=")
        key, v = key.strip().lower(), v.strip().lower()
        if key in SIGNAL_PURPOSES and (v in _YES or v in _NO):
            out[key] = v in _YES
    return out


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
        elif key in ("content-signal", "content-usage") and current is not None:
            last_was_agent = False
            current.signals.update(_signals(value))
        else:
            last_was_agent = False
    return groups


def _robots_regex(pattern: str) -> str:
    """A robots path pattern (`*` any, `$` end) -> an anchored RE2 regex."""
    end = pattern.endswith("$")
    body = "".join(".*" if ch == "*" else re.escape(ch) for ch in (pattern[:-1] if end else pattern))
    return "^" + body + ("$" if end else "")


def robots_tokens(labelled: pl.DataFrame, catalogue: Catalogue) -> pl.DataFrame:
    """`client_id, token`: the robots.txt tokens each automated client answers to. A named agent
    answers to its entry's tokens (none for fetchers whose operators say they act for a user and
    do not read robots.txt); automation that names no agent answers to `*`."""
    tokens = pl.DataFrame(
        [(a.name, t) for a in catalogue.agents for t in a.robots],
        schema={"agent": pl.String, "token": pl.String},
        orient="row",
    )
    named = labelled.filter(pl.col("agent").is_not_null()).select("client_id", "agent").join(tokens, on="agent")
    anon = labelled.filter(pl.col("automated") & pl.col("agent").is_null()).select("client_id", token=pl.lit("*"))
    return pl.concat([named.select("client_id", "token"), anon])


REQUEST_ROBOTS = "request_robots"
# The disallowed requests `judge_robots` finds, typed for a bucket that has none.
REQUEST_ROBOTS_COLUMNS = "source VARCHAR, line_no BIGINT, client_id VARCHAR, token VARCHAR, reason VARCHAR"


def judge_robots(
    con: duckdb.DuckDBPyConnection, versions: list[RobotsVersion], tokens: pl.DataFrame, table: str = "sessionised"
) -> None:
    """`request_robots(source, line_no, client_id, token, reason)`: the requests of `table` (a
    table or a table function) that robots.txt disallows their automated client, each judged by
    the version in force when it came (`versions`, from `load_robots`).

    `tokens` has client_id and token (a robots.txt token the client's agent answers to, or `*`
    for automation that names none). The most specific group wins (the longest token that the
    client answers to), then within it the longest matching rule, Allow winning a tie. Only the
    clients of `tokens` are judged, so the requests of one share of the clients (a bucket, with
    its clients' tokens) give that share's findings.
    """
    con.execute(f"CREATE OR REPLACE TEMP TABLE {REQUEST_ROBOTS} ({REQUEST_ROBOTS_COLUMNS})")
    if tokens.height == 0:
        return
    con.register("client_tokens", tokens.with_columns(pl.col("token").str.to_lowercase()))
    try:
        for i, v in enumerate(versions):
            until = versions[i + 1].start if i + 1 < len(versions) else None
            when = " ".join(
                f"AND s.ts {op} TIMESTAMPTZ '{t.isoformat()}'"
                for op, t in ((">=", v.start), ("<", until))
                if t is not None
            )
            _version_violations(con, v.groups, table, when)
    finally:
        con.unregister("client_tokens")


def robots_violations(con: duckdb.DuckDBPyConnection) -> pl.DataFrame:
    """`client_id, threat, reason`: each client of `request_robots` (`judge_robots`, over one
    table or the buckets' together) with how many of its requests robots.txt disallows."""
    return con.sql(
        f"""SELECT client_id, 'robots_violation' AS threat,
                  'robots:disallowed:' || any_value(token) || ':requests=' || count(*) AS reason
           FROM {REQUEST_ROBOTS} GROUP BY client_id"""
    ).pl()


def _version_violations(con: duckdb.DuckDBPyConnection, groups: list[RobotsGroup], table: str, when: str) -> None:
    """Add to `request_robots` the requests (of `table`, within `when`) that `groups` disallow."""
    rows = [(a, i) for i, g in enumerate(groups) for a in g.agents]
    if not rows:
        return
    con.register("robots_groups", pl.DataFrame(rows, schema={"token": pl.String, "grp": pl.Int32}, orient="row"))
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
                f"{sql_literal(rx)}) THEN {score} END"
            )
    if not cases:
        return
    best = f"greatest({', '.join(cases)})" if len(cases) > 1 else cases[0]
    # Each disallowed request keeps its own finding (`request_robots`), its client the count.
    con.execute(
        f"""INSERT INTO {REQUEST_ROBOTS}
            SELECT source, line_no, client_id, token, 'robots:disallowed:' || token AS reason
            FROM (SELECT s.source, s.line_no, s.client_id, c.token, {best} AS score
                  FROM {table} s JOIN client_group c USING (client_id)
                  WHERE s.page_type <> 'robots' {when})
            WHERE score IS NOT NULL AND score % 2 = 0"""
    )


def group_for(groups: list[RobotsGroup], tokens: list[str]) -> RobotsGroup | None:
    """The group an agent answering to `tokens` follows: its longest token's, else `*`'s."""
    best: tuple[int, RobotsGroup] | None = None
    for g in groups:
        for a in g.agents:
            if a in tokens or a == "*":
                rank = len(a) if a != "*" else 0
                if best is None or rank > best[0]:
                    best = (rank, g)
    return best[1] if best else None


def write_robots_versions(versions: list[RobotsVersion], path: Path) -> None:
    """The versions as the lake keeps them (`robots_txt`): `start` (null: in force throughout),
    `name` and `text`, for the report to judge against what classify did."""
    path.parent.mkdir(parents=True, exist_ok=True)
    pl.DataFrame(
        {"start": [v.start for v in versions], "name": [v.name for v in versions], "text": [v.text for v in versions]},
        schema=ROBOTS_TXT_SCHEMA,
    ).write_parquet(path)
