"""Range membership recorded at ingest, for lakes whose client addresses are pseudonymised.

With `--ip-privacy` the lake never holds a full address, so what verification needs from it is
looked up while ingest still has it: `ip_ranges`, the published range files holding the address,
the most specific first (DESIGN.md, "Privacy"). `ingest_lookup` is the lookup ingest is given;
`verify_claims` reads the recorded lists in place of its own lookup, and
`attribute_recorded` names the operator of a browser whose address lies in its ranges.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import polars as pl

from trafficlens.classify.verify.cache import default_ranges_dir
from trafficlens.classify.verify.hosting import HostingRanges, hosting_for, load_hosting
from trafficlens.classify.verify.ranges import load_ranges, locate_addresses
from trafficlens.classify.verify.sources import hosting_sources, sources_by_file
from trafficlens.errors import OptionError
from trafficlens.ingest.privacy import MARK
from trafficlens.schema import STR_LIST


def range_files_of(ips: pl.Series, ranges: pl.DataFrame) -> pl.DataFrame:
    """`client_ip, ip_ranges` for each distinct address: the range files holding it, the most
    specific first then by name; empty outside every range; null for what is not an address."""
    addrs, inside = locate_addresses(ips, ranges)
    ordered = inside.select(
        "client_ip",
        ip_ranges=pl.concat_list(
            pl.col("range_file"), pl.col("range_files").list.set_difference(pl.concat_list("range_file")).list.sort()
        ),
    )
    return addrs.join(ordered, on="client_ip", how="left").select(
        "client_ip",
        ip_ranges=pl.when(pl.col("key").is_null())
        .then(pl.lit(None, STR_LIST))
        .otherwise(pl.col("ip_ranges").fill_null(pl.lit([], STR_LIST))),
    )


def ingest_lookup(ranges_dir: str | Path | None = None) -> Callable[[pl.Series], pl.DataFrame] | None:
    """What ingest records for pseudonymised addresses: their range files, from `ranges_dir` or
    the folder `trafficlens ranges update` fills; None when neither holds any."""
    if ranges_dir and not Path(ranges_dir).is_dir():
        raise OptionError(
            f"--ranges {ranges_dir}: no such folder; `trafficlens ranges update --dir {ranges_dir}` fills one"
        )
    folder = Path(ranges_dir) if ranges_dir else default_ranges_dir()
    if folder is None:
        return None
    loaded: list[tuple[pl.DataFrame, HostingRanges]] = []
    # A hosting provider's range holding the address is recorded by the provider's (first) file
    # name, after the operators' files: those name the operator, the most specific first.
    files: dict[str, str] = {}
    for src in hosting_sources():
        files.setdefault(src.provider, src.file)

    def lookup(ips: pl.Series) -> pl.DataFrame:
        if not loaded:  # read when first needed: most ingests keep their addresses
            loaded.append((load_ranges(folder), load_hosting(folder)))
        ranges, hosting = loaded[0]
        found = range_files_of(ips, ranges)
        if not hosting.prefixes.height:
            return found
        host = hosting_for(ips, hosting).select(
            "client_ip", _file=pl.col("hosting").replace_strict(files, default=None, return_dtype=pl.String)
        )
        return (
            found.join(host, on="client_ip", how="left")
            .with_columns(
                ip_ranges=pl.when(pl.col("_file").is_not_null())
                .then(pl.concat_list(pl.col("ip_ranges").fill_null(pl.lit([], STR_LIST)), pl.col("_file")))
                .otherwise(pl.col("ip_ranges"))
            )
            .drop("_file")
        )

    return lookup


def hosting_recorded(clients: pl.DataFrame) -> pl.DataFrame:
    """`client_ip, hosting` for clients whose recorded `ip_ranges` name a hosting provider's file
    (pseudonymised addresses: the service and region are not kept)."""
    providers = {src.file: src.provider for src in hosting_sources()}
    return (
        clients.select("client_ip", "ip_ranges")
        .explode("ip_ranges")
        .with_columns(hosting=pl.col("ip_ranges").replace_strict(providers, default=None, return_dtype=pl.String))
        .filter(pl.col("hosting").is_not_null())
        .unique("client_ip", keep="first", maintain_order=True)
        .select("client_ip", "hosting")
    )


def attribute_recorded(clients: pl.DataFrame) -> pl.DataFrame:
    """`client_ip, operator, range_file` for clients whose recorded `ip_ranges` place them in an
    operator's published ranges (the most specific file names the operator), as
    `attribute_addresses` does for full addresses."""
    operators = {f: s.operator for f, s in sources_by_file().items()}
    return (
        clients.filter(pl.col("ip_ranges").list.len() > 0)
        .select("client_ip", range_file=pl.col("ip_ranges").list.first())
        .unique("client_ip")
        .with_columns(operator=pl.col("range_file").replace_strict(operators, default=None, return_dtype=pl.String))
        .filter(pl.col("operator").is_not_null())
        .select("client_ip", "operator", "range_file")
    )


def with_recorded_ranges(claims: pl.DataFrame) -> pl.DataFrame:
    """Claims joined to their addresses' `key` and `range_files`, with what ingest recorded for
    pseudonymised addresses in their place: `range_files` from `ip_ranges`, and a stand-in `key`
    where it recorded any (none: the claim cannot be checked). `_hidden` marks those rows."""
    hidden = pl.col("client_ip").str.contains(MARK, literal=True).fill_null(False)
    recorded = pl.col("ip_ranges") if "ip_ranges" in claims.columns else pl.lit(None, STR_LIST)
    return claims.with_columns(
        _hidden=hidden,
        range_files=pl.when(hidden).then(recorded).otherwise(pl.col("range_files")),
        key=pl.when(hidden & recorded.is_not_null()).then(pl.lit("recorded")).otherwise(pl.col("key")),
    )
