"""Reverse DNS: forward-confirmed lookups of the addresses that claim an agent.

Reverse DNS is network-bound, so it is the one check that runs per distinct address: in a
bounded thread pool, behind a persistent cache. The resolver is injectable, so tests need no
network.
"""

from __future__ import annotations

import concurrent.futures as cf
import ipaddress
import socket
import threading
import time
from collections.abc import Iterable
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Protocol

import polars as pl

from trafficlens.classify.verify.addresses import key_to_address, parse_ips
from trafficlens.classify.verify.cache import default_cache_dir, write_atomic
from trafficlens.errors import TrafficlensError


class Resolver(Protocol):
    """The two lookups of forward-confirmed reverse DNS; injectable so tests need no network."""

    def reverse(self, address: str) -> str | None:
        """The PTR name of `address`, None when it has none; raises OSError when the lookup fails."""
        ...

    def forward(self, hostname: str) -> list[str]:
        """The addresses `hostname` resolves to ([] when it does not exist); OSError on failure."""
        ...


class SocketResolver:
    """The system resolver (socket.gethostbyaddr / getaddrinfo)."""

    # h_errno values that are answers, not failures: HOST_NOT_FOUND and NO_DATA.
    _NO_NAME = {1, 4}

    def reverse(self, address: str) -> str | None:
        try:
            return socket.gethostbyaddr(address)[0]
        except socket.herror as e:
            if e.errno in self._NO_NAME:
                return None
            raise

    def forward(self, hostname: str) -> list[str]:
        try:
            infos = socket.getaddrinfo(hostname, None, proto=socket.IPPROTO_TCP)
        except socket.gaierror as e:
            if e.errno in (socket.EAI_NONAME, getattr(socket, "EAI_NODATA", socket.EAI_NONAME)):
                return []
            raise
        return [str(info[4][0]) for info in infos]


_RDNS_SCHEMA: dict[str, pl.DataType] = {
    "address": pl.String(),  # canonical: 192.0.2.1, 2001:db8::1
    "hostname": pl.String(),
    "confirmed": pl.Boolean(),  # the hostname resolves back to the address
    "status": pl.String(),  # ok | no_ptr | failed (failed lookups are never cached)
    "checked_at": pl.Datetime("us", "UTC"),
}


def _canonical(address: str) -> str | None:
    try:
        ip = ipaddress.ip_address(address.split("%", 1)[0].strip("[]"))
    except ValueError:
        return None
    if isinstance(ip, ipaddress.IPv6Address) and ip.ipv4_mapped is not None:
        return str(ip.ipv4_mapped)
    return str(ip)


def _fcrdns(address: str, resolver: Resolver) -> tuple[str | None, bool, str]:
    """(hostname, forward-confirmed, status) for one address."""
    try:
        host = resolver.reverse(address)
        if not host:
            return None, False, "no_ptr"
        host = host.rstrip(".").lower()
        forward = resolver.forward(host)
    except OSError:
        return None, False, "failed"
    return host, address in {_canonical(a) for a in forward}, "ok"


def _read_rdns_cache(path: Path) -> pl.DataFrame:
    try:
        return pl.read_parquet(path).select(list(_RDNS_SCHEMA)).cast(_RDNS_SCHEMA)  # type: ignore[arg-type]
    except FileNotFoundError:
        return pl.DataFrame(schema=_RDNS_SCHEMA)
    except (OSError, pl.exceptions.PolarsError):
        # A damaged cache only costs lookups; it is rewritten whole below.
        return pl.DataFrame(schema=_RDNS_SCHEMA)


def _lookup_all(
    addresses: list[str], resolver: Resolver, workers: int, timeout: float
) -> dict[str, tuple[str | None, bool, str]]:
    """FCrDNS for each address, at most `workers` at once, each given `timeout` seconds.

    The system resolver cannot be interrupted, so a lookup past its time is recorded as failed
    and its thread is left to finish on its own instead of holding up the rest.
    """
    started: dict[str, float] = {}
    lock = threading.Lock()

    def task(address: str) -> tuple[str | None, bool, str]:
        with lock:
            started[address] = time.monotonic()
        return _fcrdns(address, resolver)

    results: dict[str, tuple[str | None, bool, str]] = {}
    pool = cf.ThreadPoolExecutor(max_workers=max(1, workers), thread_name_prefix="trafficlens-rdns")
    try:
        pending = {pool.submit(task, a): a for a in addresses}
        while pending:
            done, _ = cf.wait(pending, timeout=min(0.05, timeout), return_when=cf.FIRST_COMPLETED)
            for fut in done:
                results[pending.pop(fut)] = fut.result()
            now = time.monotonic()
            with lock:
                late = [f for f, a in pending.items() if a in started and now - started[a] > timeout]
            for fut in late:
                results[pending.pop(fut)] = (None, False, "failed")
    finally:
        pool.shutdown(wait=False, cancel_futures=True)
    return results


def reverse_dns(
    addresses: pl.Series | Iterable[str],
    *,
    resolver: Resolver | None = None,
    cache: Path | None = None,
    workers: int = 16,
    timeout: float = 5.0,
    max_age: timedelta = timedelta(days=7),
) -> pl.DataFrame:
    """Forward-confirmed reverse DNS of each distinct address, through a persistent cache.

    Returns `client_ip, hostname, confirmed, status` for every distinct address given (status
    `ok`, `no_ptr`, `failed`, or `invalid` for a string that is not an address). Answers younger
    than `max_age` come from the cache (default: rdns.parquet in the trafficlens cache folder)
    without touching the network; failed lookups are not cached, so they are tried again.
    """
    series = addresses if isinstance(addresses, pl.Series) else pl.Series(list(addresses), dtype=pl.String)
    given = parse_ips(series.cast(pl.String).unique().drop_nulls())
    # The resolver wants one canonical spelling (no brackets, zone or IPv4-mapped form). This
    # loop is per distinct address, like the lookups it prepares, which dwarf it.
    given = given.with_columns(
        address=pl.Series([None if k is None else key_to_address(k) for k in given["key"]], dtype=pl.String)
    )
    path = cache if cache is not None else default_cache_dir() / "rdns.parquet"
    cached = _read_rdns_cache(path)
    now = datetime.now(UTC)
    fresh = cached.filter(pl.col("checked_at") >= now - max_age).unique("address", keep="last")
    wanted = given["address"].drop_nulls().unique()
    missing = sorted(set(wanted.to_list()) - set(fresh["address"].to_list()))
    if missing:
        found = _lookup_all(missing, resolver or SocketResolver(), workers, timeout)
        new = pl.DataFrame([(a, h, c, s, now) for a, (h, c, s) in found.items()], schema=_RDNS_SCHEMA, orient="row")
        fresh = pl.concat([fresh, new])
        if new.filter(pl.col("status") != "failed").height:
            # Stale answers are dropped rather than kept: they would be looked up again anyway.
            merged = fresh.filter(pl.col("status") != "failed").sort("address")
            try:
                path.parent.mkdir(parents=True, exist_ok=True)
                write_atomic(path, merged.write_parquet)
            except OSError as e:
                raise TrafficlensError(
                    f"cannot write the reverse-DNS cache {path}: {e.strerror}; set XDG_CACHE_HOME to a writable folder"
                ) from None
    return given.join(fresh.select("address", "hostname", "confirmed", "status"), on="address", how="left").select(
        "client_ip",
        "hostname",
        pl.col("confirmed").fill_null(False),
        pl.when(pl.col("address").is_null()).then(pl.lit("invalid")).otherwise(pl.col("status")).alias("status"),
    )
