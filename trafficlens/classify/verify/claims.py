"""Verifying claims: whether an address claiming an agent is that agent's.

A client that claims a known agent (GPTBot, Googlebot, ...) is `verified` when its address lies
in one of the range files the operator publishes for that agent, or passes forward-confirmed
reverse DNS; `spoofed` when a check that could be made fails; `declared` when nothing could be
checked.
"""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path

import polars as pl

from trafficlens.classify.verify.ranges import locate_addresses
from trafficlens.classify.verify.rdns import Resolver, reverse_dns
from trafficlens.classify.verify.recorded import with_recorded_ranges
from trafficlens.classify.verify.sources import sources_by_file
from trafficlens.schema import STR_LIST


def _prefixed(col: str, prefix: str) -> pl.Expr:
    return pl.col(col).list.eval(pl.lit(prefix) + pl.element())


def _suffix(expr: pl.Expr) -> pl.Expr:
    """'googlebot.com', '.googlebot.com.' and '.GoogleBot.com' all mean '.googlebot.com'."""
    s = expr.str.strip_chars().str.strip_chars(".").str.to_lowercase()
    return pl.lit(".") + s


def verify_claims(
    claims: pl.DataFrame,
    ranges: pl.DataFrame,
    rdns: bool = False,
    *,
    resolver: Resolver | None = None,
    rdns_cache: Path | None = None,
    workers: int = 16,
    timeout: float = 5.0,
    max_age: timedelta = timedelta(days=7),
) -> pl.DataFrame:
    """Check each claim (an address claiming an agent) against ranges and, with `rdns`, DNS.

    `claims` has `client_ip, agent, operator, verify_ranges` (range file names the agent's
    addresses are published in) and `verify_rdns` (hostname suffixes its reverse names end
    in). Adds `identity` and `reasons`:
    - verified: the address is in one of the agent's range files (`ip:in_ranges:FILE`) or its
      reverse name ends in one of the suffixes and resolves back to it (`rdns:confirmed:SUFFIX`);
    - spoofed: a check could be made and failed: a range file of the agent is loaded and the
      address is in none of them (`ip:not_in_ranges:FILE` for each), or reverse DNS answered
      with a name outside the suffixes (`rdns:mismatch`), a name that does not resolve back
      (`rdns:unconfirmed`) or no name at all (`rdns:no_ptr`);
    - declared: nothing could be checked (`ip:no_ranges_loaded`, `rdns:lookup_failed`,
      `ip:invalid` for a client field that is not an address, `verify:no_method` when the
      operator publishes neither ranges nor names, `ip:no_ranges_at_ingest` for a pseudonymised
      address whose ranges ingest could not look up).
    A pseudonymised address (`--ip-privacy`) is checked against the range files ingest recorded
    for it (an optional `ip_ranges` column), never by reverse DNS.
    Without `rdns`, `rdns:not_checked` marks claims that reverse DNS could still have decided.
    One output row per claim, in the order given.
    """
    base = [c for c in claims.columns if c not in ("identity", "reasons")]
    if claims.height == 0:
        return claims.select(base).with_columns(identity=pl.lit(None, pl.String), reasons=pl.lit(None, STR_LIST))
    alias = {f: s.same_as for f, s in sources_by_file().items() if s.same_as}
    loaded = sorted(set(ranges["range_file"].to_list()))
    df = (
        claims.select(base)
        .with_row_index("_row")
        .with_columns(
            _want=pl.col("verify_ranges").cast(STR_LIST).fill_null(pl.lit([], STR_LIST)),
            _sfx=pl.col("verify_rdns").cast(STR_LIST).fill_null(pl.lit([], STR_LIST)),
        )
    )
    # A claim naming a renamed file (googlebot.json) is checked against its successor too.
    df = df.with_columns(
        _want=pl.concat_list(
            "_want", pl.col("_want").list.eval(pl.element().replace_strict(alias, default=None)).list.drop_nulls()
        )
        .list.unique()
        .list.sort()
    )
    addrs, inside = locate_addresses(df["client_ip"], ranges)
    matches = addrs.join(inside.select("client_ip", "range_files"), on="client_ip", how="left")
    df = df.join(matches.select("client_ip", "key", "range_files"), on="client_ip", how="left")
    df = with_recorded_ranges(df).with_columns(
        _loaded=pl.col("_want").list.eval(pl.element().filter(pl.element().is_in(loaded))),
        _hits=pl.col("_want").list.set_intersection(pl.col("range_files").fill_null(pl.lit([], STR_LIST))).list.sort(),
    )
    has_ranges = pl.col("_want").list.len() > 0
    has_sfx = pl.col("_sfx").list.len() > 0
    df = df.with_columns(
        _ip=(
            pl.when(~has_ranges & ~has_sfx)
            .then(pl.lit("none"))
            .when(pl.col("_hidden") & pl.col("key").is_null())
            .then(pl.lit("unrecorded"))
            .when(pl.col("key").is_null())
            .then(pl.lit("invalid"))
            .when(~has_ranges)
            .then(pl.lit("none"))
            .when(pl.col("_loaded").list.len() == 0)
            .then(pl.lit("unloaded"))
            .when(pl.col("_hits").list.len() > 0)
            .then(pl.lit("in"))
            .otherwise(pl.lit("out"))
        )
    )

    # DNS is asked only about claims it can still decide: with suffixes, a real address, and
    # not already verified by ranges.
    needs_dns = has_sfx & pl.col("key").is_not_null() & ~pl.col("_hidden") & (pl.col("_ip") != "in")
    if not rdns:
        df = df.with_columns(
            _rd=pl.when(needs_dns).then(pl.lit("not_checked")).otherwise(pl.lit("none")),
            _matched=pl.lit(None, pl.String),
        )
    else:
        need = df.filter(needs_dns)
        answers = reverse_dns(
            need["client_ip"], resolver=resolver, cache=rdns_cache, workers=workers, timeout=timeout, max_age=max_age
        )
        matched = (
            need.select("_row", "client_ip", sfx=pl.col("_sfx"))
            .explode("sfx")
            .join(answers.select("client_ip", "hostname"), on="client_ip")
            .filter((pl.lit(".") + pl.col("hostname")).str.ends_with(_suffix(pl.col("sfx"))))
            .group_by("_row", maintain_order=True)
            .agg(_matched=_suffix(pl.col("sfx")).first())
        )
        df = (
            df.join(answers.select("client_ip", _status="status", _conf="confirmed"), on="client_ip", how="left")
            .join(matched, on="_row", how="left")
            .with_columns(
                _rd=(
                    pl.when(~needs_dns)
                    .then(pl.lit("none"))
                    .when(pl.col("_status") == "failed")
                    .then(pl.lit("lookup_failed"))
                    .when(pl.col("_status") == "no_ptr")
                    .then(pl.lit("no_ptr"))
                    .when(pl.col("_status") != "ok")
                    .then(pl.lit("none"))
                    .when(pl.col("_matched").is_null())
                    .then(pl.lit("mismatch"))
                    .when(pl.col("_conf"))
                    .then(pl.lit("confirmed"))
                    .otherwise(pl.lit("unconfirmed"))
                )
            )
        )

    verified = (pl.col("_ip") == "in") | (pl.col("_rd") == "confirmed")
    failed = (pl.col("_ip") == "out") | pl.col("_rd").is_in(["mismatch", "unconfirmed", "no_ptr"])
    identity = (
        pl.when(verified).then(pl.lit("verified")).when(failed).then(pl.lit("spoofed")).otherwise(pl.lit("declared"))
    )
    empty = pl.lit([], STR_LIST)
    ip_reasons = (
        pl.when(pl.col("_ip") == "in")
        .then(_prefixed("_hits", "ip:in_ranges:"))
        .when(pl.col("_ip") == "out")
        .then(_prefixed("_loaded", "ip:not_in_ranges:"))
        .when(pl.col("_ip") == "unloaded")
        .then(pl.lit(["ip:no_ranges_loaded"], STR_LIST))
        .when(pl.col("_ip") == "invalid")
        .then(pl.lit(["ip:invalid"], STR_LIST))
        .when(pl.col("_ip") == "unrecorded")
        .then(pl.lit(["ip:no_ranges_at_ingest"], STR_LIST))
        .otherwise(empty)
    )
    rd_reasons = (
        pl.when(pl.col("_rd") == "confirmed")
        .then(pl.concat_list(pl.lit("rdns:confirmed:") + pl.col("_matched")))
        .when(pl.col("_rd") != "none")
        .then(pl.concat_list(pl.lit("rdns:") + pl.col("_rd")))
        .otherwise(empty)
    )
    no_method = pl.when(~has_ranges & ~has_sfx).then(pl.lit(["verify:no_method"], STR_LIST)).otherwise(empty)
    return (
        df.with_columns(identity=identity, reasons=pl.concat_list(ip_reasons, rd_reasons, no_method))
        .sort("_row")
        .select(*base, "identity", "reasons")
    )
