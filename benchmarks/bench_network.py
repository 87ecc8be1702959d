"""Network evidence cost: hosting, iptoasn TSV and .mmdb lookups per million distinct addresses.

    python benchmarks/bench_network.py                 # 1M distinct addresses (90% IPv4)
    python benchmarks/bench_network.py --addresses 200000

The tables are synthetic, at the size of the real ones: hosting ranges like AWS's, Google Cloud's
and Azure's files together (about 60,000 nested prefixes), an iptoasn ip2asn-combined table
(about 500,000 disjoint ranges) and a GeoLite2-ASN-like .mmdb (--mmdb-networks networks, built
with mmdb-writer). Each lookup runs three times; the best is kept. Results go to
benchmarks/out/network.json too.
"""

from __future__ import annotations

import argparse
import ipaddress
import json
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import polars as pl

HERE = Path(__file__).resolve().parent
OUT = HERE / "out"

from trafficlens.classify.verify.geo import geo_for, load_geo  # noqa: E402
from trafficlens.classify.verify.hosting import hosting_for, hosting_from_files  # noqa: E402


def addresses(n: int, seed: int) -> pl.Series:
    """`n` distinct addresses, 90% IPv4 (uniform over the public space), 10% IPv6 in 2000::/4."""
    rng = np.random.default_rng(seed)
    n4 = int(n * 0.9)
    v4 = np.unique(rng.integers(1 << 24, 224 << 24, size=int(n4 * 1.01), dtype=np.uint64))[:n4]
    a = (v4 >> 24) & 255
    b = (v4 >> 16) & 255
    c = (v4 >> 8) & 255
    d = v4 & 255
    four = pl.DataFrame({"a": a, "b": b, "c": c, "d": d}).select(
        pl.concat_str([pl.col(x).cast(pl.String) for x in "abcd"], separator=".")
    )
    groups = rng.integers(0, 1 << 16, size=(n - n4, 4), dtype=np.uint32)
    six = [f"2{g[0] & 0xFFF:03x}:{g[1]:x}:{g[2]:x}::{g[3]:x}" for g in groups]
    return pl.Series("client_ip", four.to_series().to_list() + six).unique()


def hosting_files(seed: int) -> dict[str, bytes]:
    """AWS-, Google-Cloud- and Azure-shaped files with nested prefixes, at their real sizes."""
    rng = np.random.default_rng(seed)

    def v4(n: int, lo: int, hi: int) -> list[str]:
        lengths = rng.integers(lo, hi + 1, size=n)
        starts = rng.integers(1 << 24, 224 << 24, size=n, dtype=np.uint64)
        return [
            str(ipaddress.ip_network((int(s) >> (32 - int(k)) << (32 - int(k)), int(k))))
            for s, k in zip(starts, lengths)
        ]

    aws = [{"ip_prefix": p, "region": "us-east-1", "service": "EC2"} for p in v4(9000, 12, 24)]
    aws += [{"ip_prefix": p, "region": "GLOBAL", "service": "AMAZON"} for p in v4(2000, 14, 18)]
    google = [{"ipv4Prefix": p, "service": "Google Cloud", "scope": "us-central1"} for p in v4(900, 12, 22)]
    tags = []
    for i in range(400):  # Azure: service tags over regional tags over the whole cloud
        tags.append(
            {
                "name": f"Svc{i}.Region{i % 60}",
                "properties": {
                    "region": f"region{i % 60}",
                    "systemService": f"Svc{i}",
                    "addressPrefixes": v4(120, 16, 29),
                },
            }
        )
    return {
        "aws-ip-ranges.json": json.dumps({"prefixes": aws, "ipv6_prefixes": []}).encode(),
        "google-cloud.json": json.dumps({"prefixes": google}).encode(),
        "azure-service-tags.json": json.dumps({"values": tags}).encode(),
    }


def ip2asn(path: Path, n: int, seed: int) -> Path:
    """An ip2asn-combined-like TSV: `n` disjoint IPv4 ranges covering the space, AS and country each."""
    rng = np.random.default_rng(seed)
    cuts = np.unique(rng.integers(1 << 24, 224 << 24, size=n, dtype=np.uint64))
    starts, ends = cuts[:-1], cuts[1:] - 1

    def dotted(x: np.ndarray) -> pl.Series:
        parts = [pl.Series(((x >> s) & 255).astype(np.int64)).cast(pl.String) for s in (24, 16, 8, 0)]
        return (
            pl.DataFrame({f"p{i}": p for i, p in enumerate(parts)})
            .select(pl.concat_str(pl.all(), separator="."))
            .to_series()
        )

    pl.DataFrame(
        {
            "s": dotted(starts),
            "e": dotted(ends),
            "asn": rng.integers(1, 400000, size=len(starts)),
            "cc": rng.choice(["US", "DE", "FR", "GB", "JP", "BR", "IN", "CN"], size=len(starts)),
            "org": [f"NET-{i}" for i in range(len(starts))],
        }
    ).write_csv(path, separator="\t", include_header=False, quote_style="never")
    return path


def mmdb(path: Path, n: int, seed: int) -> Path:
    """A GeoLite2-ASN-like .mmdb with `n` IPv4 networks."""
    from mmdb_writer import MMDBWriter
    from netaddr import IPSet

    rng = np.random.default_rng(seed)
    writer = MMDBWriter(ip_version=6, database_type="GeoLite2-ASN", ipv4_compatible=True)
    starts = rng.integers(1 << 24, 224 << 24, size=n, dtype=np.uint64)
    for i, s in enumerate(starts):
        net = ipaddress.ip_network((int(s) >> 12 << 12, 20))
        writer.insert_network(
            IPSet([str(net)]),
            {"autonomous_system_number": 1000 + i % 60000, "autonomous_system_organization": f"AS-{i % 60000}"},
        )
    writer.to_db_file(str(path))
    return path


def best_of(runs: int, fn) -> float:  # type: ignore[no-untyped-def]
    times = []
    for _ in range(runs):
        t = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t)
    return min(times)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--addresses", type=int, default=1_000_000)
    ap.add_argument("--tsv-ranges", type=int, default=500_000)
    ap.add_argument("--mmdb-networks", type=int, default=20_000)
    ap.add_argument("--runs", type=int, default=3)
    args = ap.parse_args(argv)
    ips = addresses(args.addresses, 1)
    per_m = 1e6 / ips.len()
    out: dict[str, float | int] = {"addresses": ips.len()}
    with tempfile.TemporaryDirectory(prefix="trafficlens-bench-network-") as tmp:
        files = hosting_files(2)
        t = time.perf_counter()
        table = hosting_from_files(files)
        out["hosting_prefixes"] = table.prefixes.height
        out["hosting_load_s"] = time.perf_counter() - t
        out["hosting_s_per_million"] = best_of(args.runs, lambda: hosting_for(ips, table)) * per_m
        inside = hosting_for(ips, table)["hosting"].is_not_null().sum()
        out["hosting_matched"] = int(inside)

        tsv = ip2asn(Path(tmp) / "ip2asn-v4.tsv", args.tsv_ranges, 3)
        t = time.perf_counter()
        dbs = load_geo([tsv])
        out["tsv_ranges"] = args.tsv_ranges
        out["tsv_load_s"] = time.perf_counter() - t
        out["tsv_s_per_million"] = best_of(args.runs, lambda: geo_for(ips, dbs)) * per_m

        db = mmdb(Path(tmp) / "asn.mmdb", args.mmdb_networks, 4)
        with load_geo([db]) as mm:
            out["mmdb_networks"] = args.mmdb_networks
            out["mmdb_s_per_million"] = best_of(args.runs, lambda: geo_for(ips, mm)) * per_m
            out["mmdb_matched"] = int(geo_for(ips, mm)["asn"].is_not_null().sum())
    print(f"{out['addresses']:,} distinct addresses (90% IPv4)")
    print(
        f"hosting: {out['hosting_prefixes']:,} prefixes loaded in {out['hosting_load_s']:.2f}s; "
        f"{out['hosting_s_per_million']:.2f}s per million addresses ({out['hosting_matched']:,} inside)"
    )
    print(
        f"iptoasn TSV: {out['tsv_ranges']:,} ranges loaded in {out['tsv_load_s']:.2f}s; {out['tsv_s_per_million']:.2f}s per million addresses"
    )
    print(
        f"mmdb: {out['mmdb_networks']:,} networks; {out['mmdb_s_per_million']:.2f}s per million addresses "
        f"({out['mmdb_matched']:,} found)"
    )
    OUT.mkdir(exist_ok=True)
    (OUT / "network.json").write_text(json.dumps(out, indent=1) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
