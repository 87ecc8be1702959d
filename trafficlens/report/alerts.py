"""Alerts for scheduled runs: what changed in the days looked at against the days before them.

Five kinds, each a row with its subject, day, value, baseline, threshold and a message:
- `new_agent`: an agent seen for the first time;
- `volume_surge`: an operator's automated requests far above its baseline (median and MAD);
- `new_spoofing`: addresses newly claiming to be an agent they are not;
- `threat_surge`: a threat's malicious clients far above its baseline;
- `identity_checks`: an agent whose requests used to verify, no longer verifying.
Thresholds come from catalogues/alerts.yml (or `--config FILE`); `trafficlens alerts` records what
fired in the lake's `alerts` table and exits 1 when anything did, so cron mails it.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
from pathlib import Path
from typing import Any

import duckdb
import polars as pl

from trafficlens.classify.threats.config import read_yaml, thresholds
from trafficlens.errors import OptionError
from trafficlens.report.core import ReportBase, section
from trafficlens.schema import ALERT_SCHEMA
from trafficlens.store import Lake, connect

ALERT_KINDS = ("new_agent", "volume_surge", "new_spoofing", "threat_surge", "identity_checks")
MAD_SCALE = 1.4826  # the MAD of a normal distribution, in standard deviations


@dataclasses.dataclass(frozen=True)
class AlertConfig:
    """Thresholds of the alerts (catalogues/alerts.yml says what each means)."""

    baseline_days: int = 28
    min_baseline_days: int = 3
    surge_factor: float = 3.0
    surge_mads: float = 5.0
    surge_min_requests: int = 100
    threat_min_clients: int = 5
    new_agent_min_requests: int = 1
    spoof_min_addresses: int = 3
    checks_baseline_min: float = 0.5
    checks_drop: float = 0.3
    checks_min_requests: int = 20
    checks_rise: float = 3.0

    @classmethod
    def load(cls, path: str | Path | None = None) -> AlertConfig:
        """The thresholds in `path` (YAML), over the shipped ones."""
        doc, where = read_yaml("--config", path, "alerts.yml", OptionError)
        return thresholds(cls, doc, "--config", where, "surge_factor: 4", OptionError)


def _robust(baseline: pl.DataFrame, key: str, days: list[dt.date]) -> pl.DataFrame:
    """Per `key`, the median and MAD of its daily `n` over `days` (a day without it counts 0)."""
    if baseline.is_empty() or not days:
        return pl.DataFrame(schema={key: pl.String, "median": pl.Float64, "mad": pl.Float64})
    grid = baseline.select(key).unique().join(pl.DataFrame({"day": days}), how="cross")
    full = grid.join(baseline, on=[key, "day"], how="left").with_columns(pl.col("n").fill_null(0).cast(pl.Float64))
    med = full.group_by(key).agg(median=pl.col("n").median())
    return (
        full.join(med, on=key)
        .group_by(key)
        .agg(pl.col("median").first(), mad=(pl.col("n") - pl.col("median")).abs().median())
        .with_columns(pl.col("median", "mad").cast(pl.Float64))
    )


def _surges(
    daily: pl.DataFrame, key: str, base_days: list[dt.date], look: list[dt.date], floor: int, cfg: AlertConfig
) -> pl.DataFrame:
    """Days of `look` where a `key`'s `n` is a surge over its baseline; keys absent from the
    baseline are left to the new-agent alert."""
    base = daily.filter(pl.col("day").is_in(base_days))
    stats = _robust(base, key, base_days).filter(pl.col("median") > 0)
    threshold = pl.max_horizontal(
        pl.lit(float(floor)),
        pl.col("median") * cfg.surge_factor,
        pl.col("median") + cfg.surge_mads * MAD_SCALE * pl.col("mad"),
    )
    return (
        daily.filter(pl.col("day").is_in(look))
        .join(stats, on=key)
        .with_columns(threshold=threshold)
        .filter(pl.col("n") >= pl.col("threshold"))
    )


def find_alerts(
    con: duckdb.DuckDBPyConnection,
    cfg: AlertConfig,
    since: dt.date | None = None,
    until: dt.date | None = None,
    where: str = "",
) -> tuple[pl.DataFrame, dict[str, Any]]:
    """The alerts over `con`'s `requests` (filtered by `where`, a SQL condition or ""), for the
    days from `since` (default: the last day of data) to `until` (default: the last), against the
    days of data before them; and what was looked at (`days`, `baseline_days`)."""
    cond = f"AND ({where})" if where else ""
    days = [r[0] for r in con.sql(f"SELECT DISTINCT ts::DATE FROM requests WHERE true {cond} ORDER BY 1").fetchall()]
    empty = pl.DataFrame(schema=ALERT_SCHEMA)
    if not days:
        return empty, {"days": [], "baseline_days": []}
    since = since or days[-1]
    until = until or days[-1]
    look = [d for d in days if since <= d <= until]
    base_days = [d for d in days if d < since][-cfg.baseline_days :]
    scope = {"days": look, "baseline_days": base_days}
    if not look or len(base_days) < cfg.min_baseline_days:
        return empty, scope
    lo, hi = base_days[0], look[-1]
    span = (
        f"ts >= TIMESTAMPTZ '{lo.isoformat()}' AND ts < TIMESTAMPTZ '{(hi + dt.timedelta(days=1)).isoformat()}' {cond}"
    )
    auto = con.sql(
        f"""SELECT ts::DATE AS day, operator, agent, identity, count(*) AS n
            FROM requests WHERE automated AND {span} GROUP BY ALL"""
    ).pl()
    rows: list[dict[str, Any]] = []

    def add(
        kind: str, subject: str, day: dt.date, value: float, baseline: float, threshold: float, message: str
    ) -> None:
        rows.append(
            {
                "kind": kind,
                "subject": subject,
                "day": day,
                "value": float(value),
                "baseline": float(baseline),
                "threshold": float(threshold),
                "message": message,
            }
        )

    # An agent first seen.
    named = auto.filter(pl.col("agent").is_not_null() & (pl.col("identity") != "spoofed"))
    before = set(named.filter(pl.col("day").is_in(base_days))["agent"])
    fresh = (
        named.filter(pl.col("day").is_in(look) & ~pl.col("agent").is_in(list(before)))
        .group_by("agent")
        .agg(
            pl.col("n").sum(),
            day=pl.col("day").min(),
            operator=pl.col("operator").drop_nulls().first(),
            identity=pl.col("identity").mode().first(),
        )
        .filter(pl.col("n") >= cfg.new_agent_min_requests)
        .sort("agent")
    )
    for r in fresh.iter_rows(named=True):
        add(
            "new_agent",
            r["agent"],
            r["day"],
            r["n"],
            0,
            cfg.new_agent_min_requests,
            f"{r['agent']} ({r['operator'] or 'no operator'}, {r['identity']}) first seen on {r['day']}: "
            f"{r['n']:,} requests, none in the {len(base_days)} days before",
        )
    # An operator's volume.
    ops = auto.filter(pl.col("operator").is_not_null()).group_by("day", "operator").agg(pl.col("n").sum())
    for r in (
        _surges(ops, "operator", base_days, look, cfg.surge_min_requests, cfg)
        .sort("day", "operator")
        .iter_rows(named=True)
    ):
        add(
            "volume_surge",
            r["operator"],
            r["day"],
            r["n"],
            r["median"],
            r["threshold"],
            f"{r['operator']}: {r['n']:,} automated requests on {r['day']}, "
            f"{r['n'] / r['median']:.1f}x its median day ({r['median']:,.0f})",
        )
    # Spoofing from new addresses.
    spoof = con.sql(
        f"""SELECT ts::DATE AS day, agent, client_ip FROM requests
            WHERE identity = 'spoofed' AND agent IS NOT NULL AND {span} GROUP BY ALL"""
    ).pl()
    seen = spoof.filter(pl.col("day").is_in(base_days)).select("agent", "client_ip").unique()
    new = (
        spoof.filter(pl.col("day").is_in(look))
        .join(seen, on=["agent", "client_ip"], how="anti")
        .group_by("agent")
        .agg(day=pl.col("day").min(), addrs=pl.col("client_ip").unique().sort())
        .filter(pl.col("addrs").list.len() >= cfg.spoof_min_addresses)
        .sort("agent")
    )
    for r in new.iter_rows(named=True):
        shown = ", ".join(r["addrs"][:5]) + (f" and {len(r['addrs']) - 5} more" if len(r["addrs"]) > 5 else "")
        add(
            "new_spoofing",
            r["agent"],
            r["day"],
            len(r["addrs"]),
            0,
            cfg.spoof_min_addresses,
            f"{len(r['addrs'])} new address(es) falsely claiming to be {r['agent']} from {r['day']}: {shown}",
        )
    # A threat's malicious clients.
    threats = con.sql(
        f"""SELECT day, threat, count(DISTINCT client_id) AS n
            FROM (SELECT ts::DATE AS day, client_id, unnest(threats) AS threat FROM requests WHERE malicious AND {span})
            WHERE threat <> 'robots_violation' GROUP BY ALL"""
    ).pl()
    for r in (
        _surges(threats, "threat", base_days, look, cfg.threat_min_clients, cfg)
        .sort("day", "threat")
        .iter_rows(named=True)
    ):
        add(
            "threat_surge",
            r["threat"],
            r["day"],
            r["n"],
            r["median"],
            r["threshold"],
            f"{r['threat']}: {r['n']:,} malicious clients on {r['day']}, "
            f"{r['n'] / r['median']:.1f}x its median day ({r['median']:,.0f})",
        )
    # Identity checks: claims that verified, no longer verifying.
    claims = auto.filter(pl.col("agent").is_not_null() & pl.col("identity").is_in(["verified", "declared", "spoofed"]))

    def share(df: pl.DataFrame) -> pl.DataFrame:
        keys = ["agent", *(["day"] if "day" in df.columns else [])]
        verified = pl.col("n").filter(pl.col("identity") == "verified").sum()
        return (
            df.group_by(keys)
            .agg(n=pl.col("n").sum(), verified=verified)
            .with_columns(share=pl.col("verified") / pl.col("n"))
        )

    base = share(claims.filter(pl.col("day").is_in(base_days)).drop("day")).filter(
        (pl.col("share") >= cfg.checks_baseline_min) & (pl.col("n") >= cfg.checks_min_requests)
    )
    daily = share(claims.filter(pl.col("day").is_in(look))).join(base.select("agent", base_share="share"), on="agent")
    # The claims failing their check must also have risen: an agent that stops coming leaves its
    # impostors alone in its name, which lowers the share but is no failure of the checks.
    failing = claims.filter(pl.col("identity") != "verified").group_by("agent", "day").agg(pl.col("n").sum())
    usual = _robust(failing.filter(pl.col("day").is_in(base_days)), "agent", base_days).select(
        "agent", fail_median="median"
    )
    off = (
        daily.join(usual, on="agent", how="left")
        .with_columns(failed=pl.col("n") - pl.col("verified"))
        .filter(
            (pl.col("n") >= cfg.checks_min_requests)
            & (pl.col("share") <= pl.col("base_share") - cfg.checks_drop)
            & (pl.col("failed") >= cfg.checks_min_requests)
            & (pl.col("failed") >= cfg.checks_rise * pl.col("fail_median").fill_null(0.0))
        )
        .sort("day", "agent")
    )
    for r in off.iter_rows(named=True):
        add(
            "identity_checks",
            r["agent"],
            r["day"],
            r["share"],
            r["base_share"],
            r["base_share"] - cfg.checks_drop,
            f"{r['agent']}: {r['share']:.0%} of its {r['n']:,} requests verified on {r['day']}, "
            f"{r['base_share']:.0%} before; {r['failed']:,} failed their check, {r['failed'] / max(r['fail_median'] or 0, 1):.1f}x "
            "the usual (its ranges changed, the lake's range files are stale or missing, or impostors came in numbers)",
        )
    out = pl.DataFrame(rows, schema=ALERT_SCHEMA, orient="row") if rows else empty
    order = {k: i for i, k in enumerate(ALERT_KINDS)}
    out = (
        out.with_columns(_o=pl.col("kind").replace_strict(order, return_dtype=pl.Int32))
        .sort("day", "_o", "subject")
        .drop("_o")
    )
    return out, scope


def run_alerts(
    lake: str | Path, since: dt.date | None = None, config: str | Path | None = None, record: bool = True
) -> tuple[pl.DataFrame, dict[str, Any]]:
    """`trafficlens alerts`: the alerts of `lake`, recorded in its `alerts` table (a run replaces
    what an earlier run recorded for the same days, so a repeated run adds nothing twice)."""
    cfg = AlertConfig.load(config)
    store = Lake(lake)
    store.require_labels()
    con = connect(store)
    try:
        con.execute("SET TimeZone = 'UTC'")
        found, scope = find_alerts(con, cfg, since)
    finally:
        con.close()
    if record and scope["days"]:
        with store.locked():
            old = (
                store.scan("alerts").collect()
                if store.has_table("alerts")
                else pl.DataFrame(schema=ALERT_SCHEMA | {"recorded": pl.Datetime("us", "UTC")})
            )
            kept = old.filter(~pl.col("day").is_in(scope["days"]))
            stamp = dt.datetime.now(dt.UTC).replace(microsecond=0)
            now = found.with_columns(recorded=pl.lit(stamp, pl.Datetime("us", "UTC")))
            txn = store.begin()
            try:
                pl.concat([kept, now], how="vertical_relaxed").sort("day", "kind", "subject").write_parquet(
                    txn.path("alerts/alerts.parquet")
                )
                txn.replace_table("alerts")
                txn.commit()
            except BaseException:
                txn.abort()
                raise
            store.refresh_views()
    return found, scope


class AlertSections(ReportBase):
    """Alerts over the report's period: its days (the last day of data when no period is given)
    against the days before them."""

    @section
    def alerts(self) -> dict[str, Any]:
        """`alerts` (kind, subject, day, value, baseline, threshold, message), `days` looked at,
        `baseline_days` and `counts` per kind."""
        cfg = AlertConfig.load()  # the shipped thresholds; `trafficlens alerts --config` for others
        since = self.since.date() if self.since else None
        until = (self.until - dt.timedelta(microseconds=1)).date() if self.until else None
        where = self._where(times=False).removeprefix("WHERE ")
        found, scope = find_alerts(self.con, cfg, since, until, where)
        counts = {k: int(found.filter(pl.col("kind") == k).height) for k in ALERT_KINDS}
        return {"alerts": found, "days": scope["days"], "baseline_days": len(scope["baseline_days"]), "counts": counts}


__all__ = ["ALERT_KINDS", "AlertConfig", "AlertSections", "find_alerts", "run_alerts"]
