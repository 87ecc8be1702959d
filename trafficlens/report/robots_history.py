"""robots.txt as it was: the versions classify was given (`--robots FOLDER` of
`robots-YYYY-MM-DD.txt`), how long each agent took to obey a change that disallowed it more, and
whether it read robots.txt again meanwhile; the usage signals each version states (Content
Signals, the IETF AIPREF vocabulary) and the agents that fetched pages against a signal about
their own purpose."""

from __future__ import annotations

import datetime as dt
from typing import Any

import polars as pl

from trafficlens.classify.agents import load_catalogue
from trafficlens.classify.threats.robots import SIGNAL_PURPOSES, RobotsGroup, RobotsVersion, group_for, parse_robots
from trafficlens.report.core import ReportBase, section
from trafficlens.schema import PAGE_VIEW_TYPES
from trafficlens.store import sql_literal

VERSIONS_SCHEMA: dict[str, pl.DataType] = {
    "start": pl.Datetime("us", "UTC"),
    "name": pl.String(),
    "groups": pl.Int64(),
    "disallow_rules": pl.Int64(),
    "signals": pl.List(pl.String()),
}
OBEY_SCHEMA: dict[str, pl.DataType] = {
    "change": pl.Datetime("us", "UTC"),
    "agent": pl.String(),
    "new_disallows": pl.List(pl.String()),
    "disallowed_after": pl.Int64(),
    "last_disallowed": pl.Datetime("us", "UTC"),
    "time_to_obey_s": pl.Float64(),
    "obeyed": pl.Boolean(),
    "robots_fetches_after": pl.Int64(),
    "first_robots_after": pl.Datetime("us", "UTC"),
    "refetched_before_obeying": pl.Boolean(),
}
SIGNALS_SCHEMA: dict[str, pl.DataType] = {
    "agent": pl.String(),
    "purpose": pl.String(),
    "version": pl.String(),
    "signal": pl.String(),
    "allowed": pl.Boolean(),
    "pages": pl.Int64(),
}


# An agent still fetching what a version disallows within this long of the version's end (or of
# the data's) has not obeyed it yet, as far as the log can tell: crawlers that mean to go on come
# back within hours.
OBEY_QUIET = dt.timedelta(hours=6)


def _disallows(g: RobotsGroup | None) -> set[str]:
    return {pat for allow, pat in g.rules if not allow} if g else set()


def _signal_text(g: RobotsGroup | None) -> str:
    return ", ".join(f"{k}={'yes' if v else 'no'}" for k, v in sorted(g.signals.items())) if g and g.signals else ""


class RobotsHistorySections(ReportBase):
    """robots.txt versions, time to obey, usage signals."""

    @section
    def robots_history(self) -> dict[str, Any]:
        """`versions` (each: `start`, `name`, `groups`, `disallow_rules`, `signals`); `obey` (per
        change that disallowed an agent more, and per agent seen after it: `change`, `agent`,
        `new_disallows`, `disallowed_after` (its requests the new version disallows), `last_disallowed`,
        `obeyed` (false: still at it within six hours of the version's or the data's end),
        `time_to_obey_s` (from the change to that last request; 0: at once; null: not obeyed), `robots_fetches_after`,
        `first_robots_after`, `refetched_before_obeying`); `signals` (per agent and version whose
        group states a signal about the agent's purpose: `signal`, `allowed`, `pages` fetched while
        it was in force); `summary`. Empty where classify was given no `--robots`."""
        rows = self.q("SELECT start, name, text FROM robots_txt ORDER BY start NULLS FIRST")
        empty = {
            "summary": {
                "versions": 0,
                "changes": 0,
                "agents_slow_to_obey": [],
                "agents_not_obeying": [],
                "agents_against_signals": [],
            },
            "versions": pl.DataFrame(schema=VERSIONS_SCHEMA),
            "obey": pl.DataFrame(schema=OBEY_SCHEMA),
            "signals": pl.DataFrame(schema=SIGNALS_SCHEMA),
        }
        if rows.is_empty():
            return empty
        versions = [RobotsVersion(r["start"], r["name"], r["text"]) for r in rows.iter_rows(named=True)]
        parsed = [parse_robots(v.text) for v in versions]
        bounds = [(v.start, versions[i + 1].start if i + 1 < len(versions) else None) for i, v in enumerate(versions)]
        cat = load_catalogue()
        tokens = {a.name: [t.lower() for t in a.robots] for a in cat.agents}
        vtable = pl.DataFrame(
            schema=VERSIONS_SCHEMA,
            data={
                "start": [v.start for v in versions],
                "name": [v.name for v in versions],
                "groups": [len(g) for g in parsed],
                "disallow_rules": [sum(len(_disallows(x)) for x in g) for g in parsed],
                "signals": [[f"{' '.join(x.agents)}: {_signal_text(x)}" for x in g if x.signals] for g in parsed],
            },
        )
        pages = ", ".join(sql_literal(t) for t in PAGE_VIEW_TYPES)
        honest = "automated AND agent IS NOT NULL AND identity <> 'spoofed'"
        # Per agent and version: pages, requests the version disallowed (recorded by classify),
        # their last, and its robots.txt fetches.
        per = []
        for i, (lo, hi) in enumerate(bounds):
            when = " AND ".join(
                [honest]
                + [f"ts {op} TIMESTAMPTZ '{t.isoformat()}'" for op, t in ((">=", lo), ("<", hi)) if t is not None]
            )
            per.append(
                self.q(
                    f"""SELECT {i} AS version, agent, any_value(purpose) AS purpose,
                               count(*) FILTER (page_type IN ({pages})) AS pages,
                               count(*) FILTER (list_contains(request_threats, 'robots_violation')) AS disallowed,
                               max(ts) FILTER (list_contains(request_threats, 'robots_violation')) AS last_disallowed,
                               count(*) FILTER (page_type = 'robots') AS robots_fetches,
                               min(ts) FILTER (page_type = 'robots') AS first_robots
                        FROM requests {self._where(extra=when)} GROUP BY agent"""
                )
            )
        seen = pl.concat(per, how="vertical_relaxed") if per else pl.DataFrame()
        obey = []
        data_end = self.con.sql(f"SELECT max(ts) FROM requests {self.where}").fetchall()[0][0]
        for i in range(1, len(versions)):
            for r in seen.filter(pl.col("version") == i).iter_rows(named=True):
                toks = tokens.get(r["agent"], [])
                if not toks:  # fetchers that act for a person do not read robots.txt by design
                    continue
                new = _disallows(group_for(parsed[i], toks)) - _disallows(group_for(parsed[i - 1], toks))
                if not new:
                    continue
                start = versions[i].start
                last = r["last_disallowed"]
                # Still at it within OBEY_QUIET of the version's end (or of the data's): not obeyed yet,
                # as far as the log shows.
                end = bounds[i][1] or data_end
                obeyed = last is None or end is None or last < end - OBEY_QUIET
                ttl = (
                    ((last - start).total_seconds() if last is not None and start is not None else 0.0)
                    if obeyed
                    else None
                )
                obey.append(
                    {
                        "change": start,
                        "agent": r["agent"],
                        "new_disallows": sorted(new),
                        "disallowed_after": r["disallowed"],
                        "last_disallowed": last,
                        "time_to_obey_s": ttl,
                        "obeyed": obeyed,
                        "robots_fetches_after": r["robots_fetches"],
                        "first_robots_after": r["first_robots"],
                        "refetched_before_obeying": r["first_robots"] is not None
                        and last is not None
                        and r["first_robots"] <= last,
                    }
                )
        obey_df = pl.DataFrame(obey, schema=OBEY_SCHEMA).sort("change", "agent")
        sig = []
        for r in seen.iter_rows(named=True):
            g = group_for(parsed[r["version"]], tokens.get(r["agent"], []) or ["*"])
            for key, allowed in (g.signals if g else {}).items():
                if r["purpose"] in SIGNAL_PURPOSES[key]:
                    sig.append(
                        {
                            "agent": r["agent"],
                            "purpose": r["purpose"],
                            "version": versions[r["version"]].name,
                            "signal": key,
                            "allowed": allowed,
                            "pages": r["pages"],
                        }
                    )
        sig_df = pl.DataFrame(sig, schema=SIGNALS_SCHEMA).sort("agent", "version", "signal")
        against = sorted({s["agent"] for s in sig if not s["allowed"] and s["pages"] > 0})
        slow = sorted({o["agent"] for o in obey if o["disallowed_after"] > 0})
        ignoring = sorted({o["agent"] for o in obey if not o["obeyed"]})
        summary = {
            "versions": len(versions),
            "changes": len(versions) - 1,
            "agents_slow_to_obey": slow,
            "agents_not_obeying": ignoring,
            "agents_against_signals": against,
        }
        return {"summary": summary, "versions": vtable, "obey": obey_df, "signals": sig_df}


__all__ = ["RobotsHistorySections"]
