"""ASN, network owner and country of addresses, from databases the user supplies.

Two kinds, any number of each, given with `--geo PATH` (a file or a folder of them) or kept in
the default folder (`<cache>/geo`):

- MaxMind GeoLite2/GeoIP2 (ASN, Country, City), DB-IP and IPinfo `.mmdb` files, read with
  `maxminddb`: a tree lookup, once per distinct address;
- iptoasn-style tables (`ip2asn-*.tsv`: start, end, AS number, country, AS description;
  `ip2country-*.tsv`: start, end, country) and DB-IP's lite CSVs (start, end, AS number,
  organisation; start, end, country), plain or gzipped: ranges as keys matched with one sorted
  as-of join, vectorised.

Each column comes from the first database, in the order given, that knows it for the address:
an ASN file and a country file combine.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import polars as pl

from trafficlens.classify.verify.addresses import key_to_address, with_ip_key
from trafficlens.classify.verify.cache import default_geo_dir
from trafficlens.classify.verify.intervals import Split, distinct_addresses, lookup, split_addresses
from trafficlens.errors import InputError
from trafficlens.schema import AS_ORG, ASN, COUNTRY

GEO_COLUMNS: dict[str, pl.DataType] = {
    "client_ip": pl.String(),
    ASN: pl.Int64(),
    AS_ORG: pl.String(),
    COUNTRY: pl.String(),
}
_VALUES = (ASN, AS_ORG, COUNTRY)
# The file names a folder given to --geo is read for (other files are ignored).
GEO_SUFFIXES = (".mmdb", ".tsv", ".tsv.gz", ".csv", ".csv.gz")


@dataclass(frozen=True)
class RangeTable:
    """One table of address ranges: disjoint segments with `asn, as_org, country`."""

    path: str
    segments: pl.DataFrame  # seg_start, seg_end, asn, as_org, country


@dataclass(frozen=True)
class GeoDatabases:
    """The databases loaded, in the order their answers are preferred."""

    sources: tuple[RangeTable | Any, ...]  # RangeTable, or an open maxminddb Reader
    paths: tuple[str, ...]

    def close(self) -> None:
        for s in self.sources:
            if not isinstance(s, RangeTable):
                s.close()

    def __enter__(self) -> GeoDatabases:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


# --- range tables (TSV, CSV) ------------------------------------------------------------------


def _null_words(e: pl.Expr) -> pl.Expr:
    # iptoasn writes unrouted ranges as AS 0, "Not routed", country "None".
    return pl.when(e.is_in(["", "-", "0", "None", "ZZ", "Not routed"])).then(None).otherwise(e)


def read_range_table(path: Path) -> RangeTable:
    """An iptoasn TSV or DB-IP lite CSV -> its segments. Raises InputError naming the file."""
    name = path.name.removesuffix(".gz")
    sep = "\t" if name.endswith(".tsv") else ","
    try:
        raw = pl.read_csv(
            path,
            separator=sep,
            has_header=False,
            infer_schema=False,
            quote_char=None if sep == "\t" else '"',
            comment_prefix="#",
            truncate_ragged_lines=True,
        )
    except (pl.exceptions.PolarsError, OSError) as e:
        first = str(e).strip().splitlines()[0] if str(e).strip() else type(e).__name__
        raise InputError(f"--geo {path}: cannot read it as a table ({first}); give an iptoasn TSV or a .mmdb") from None
    cols = raw.columns
    if raw.height == 0:
        raise InputError(f"--geo {path}: holds no rows; give an iptoasn TSV, a DB-IP CSV or a .mmdb")
    if len(cols) == 5:  # iptoasn ip2asn: start, end, AS number, country, AS description
        asn, org, country = cols[2], cols[4], cols[3]
    elif len(cols) == 4:  # DB-IP asn lite: start, end, AS number, organisation
        asn, org, country = cols[2], cols[3], None
    elif len(cols) == 3:  # iptoasn ip2country, DB-IP country lite: start, end, country
        asn, org, country = None, None, cols[2]
    else:
        raise InputError(
            f"--geo {path}: has {len(cols)} columns; an address table has start, end and then AS number, "
            "country and AS description (iptoasn), or AS number and organisation, or country"
        )
    table = raw.select(
        s=pl.col(cols[0]).str.strip_chars(),
        e=pl.col(cols[1]).str.strip_chars(),
        line=pl.int_range(1, pl.len() + 1),
        **{
            ASN: _null_words(pl.col(asn).str.strip_chars().str.strip_prefix("AS")).cast(pl.Int64, strict=False)
            if asn
            else pl.lit(None, pl.Int64),
            AS_ORG: _null_words(pl.col(org).str.strip_chars()) if org else pl.lit(None, pl.String),
            COUNTRY: _null_words(pl.col(country).str.strip_chars()).str.to_uppercase()
            if country
            else pl.lit(None, pl.String),
        },
    )
    keyed = with_ip_key(with_ip_key(table, "s", "seg_start"), "e", "seg_end")
    bad = keyed.filter(
        pl.col("seg_start").is_null() | pl.col("seg_end").is_null() | (pl.col("seg_start") > pl.col("seg_end"))
    )
    if bad.height:
        row = bad.row(0, named=True)
        raise InputError(
            f"--geo {path}: line {row['line']} ({row['s']!r} to {row['e']!r}) is not a range of addresses; "
            "give an iptoasn TSV or a .mmdb"
        )
    segments = keyed.filter(pl.col(ASN).is_not_null() | pl.col(AS_ORG).is_not_null() | pl.col(COUNTRY).is_not_null())
    return RangeTable(str(path), segments.select("seg_start", "seg_end", *_VALUES))


# --- mmdb -------------------------------------------------------------------------------------


def _open_mmdb(path: Path) -> Any:
    import maxminddb

    try:
        return maxminddb.open_database(str(path))
    except (maxminddb.InvalidDatabaseError, ValueError, OSError) as e:
        raise InputError(f"--geo {path}: not a readable MaxMind DB file ({e}); download it again") from None


def _fields(rec: Any) -> tuple[int | None, str | None, str | None]:
    """A record of any of the common layouts -> (asn, as_org, country)."""
    if not isinstance(rec, dict):
        return None, None, None
    asn = rec.get("autonomous_system_number")
    org = rec.get("autonomous_system_organization") or rec.get("as_name") or rec.get("asn_org")
    if asn is None and isinstance(rec.get("asn"), (str, int)):  # IPinfo: "AS15169"
        text = str(rec["asn"]).upper().removeprefix("AS")
        asn = int(text) if text.isdigit() else None
    country = None
    for key in ("country", "registered_country"):
        c = rec.get(key)
        if isinstance(c, dict) and c.get("iso_code"):
            country = c["iso_code"]
            break
    if country is None and isinstance(rec.get("country_code"), str):  # IPinfo, DB-IP flat layouts
        country = rec["country_code"]
    return (
        int(asn) if isinstance(asn, int) else None,
        org if isinstance(org, str) else None,
        country.upper() if isinstance(country, str) else None,
    )


def _mmdb_lookup(reader: Any, split: Split) -> pl.DataFrame:
    """One tree lookup per distinct address (the C extension reads the mapped file)."""
    four, rest = split
    ip = pl.col("client_ip")
    # The reader takes plain spellings; the others (a port, brackets, ::ffff:a.b.c.d, a zone) are
    # spelt from their key, so an IPv4 address is looked up in the IPv4 tree whatever its spelling.
    plain6 = ip.str.contains(r"^[0-9a-fA-F:]+$") & ~pl.col("key").str.starts_with("00000000000000000000ffff")
    others = rest.filter(pl.col("key").is_not_null()).with_columns(
        _as=pl.when(plain6).then(ip), _key=pl.when(~plain6).then(pl.col("key"))
    )
    asked = pl.concat(
        [four.select("client_ip", _as=ip, _key=pl.lit(None, pl.String)), others.select("client_ip", "_as", "_key")]
    )
    get = reader.get
    rows = [_fields(get(a if a is not None else key_to_address(k))) for a, k in asked.select("_as", "_key").iter_rows()]
    vals = pl.DataFrame(rows, schema={ASN: pl.Int64(), AS_ORG: pl.String(), COUNTRY: pl.String()}, orient="row")
    return pl.concat([asked.select("client_ip"), vals], how="horizontal").filter(
        pl.any_horizontal(pl.col(c).is_not_null() for c in _VALUES)
    )


# --- loading and looking up -------------------------------------------------------------------


def geo_paths(paths: Iterable[Path | str] | None = None) -> list[Path]:
    """The database files `load_geo` reads for `paths` (files, or folders of them), in order.

    Without paths, the files of the default folder (`default_geo_dir`), if it exists. Raises
    InputError for a path that does not exist, so a typo fails before any work.
    """
    given = [Path(p) for p in paths or []]
    if not given:
        folder = default_geo_dir()
        given = [folder] if folder.is_dir() else []
    out: list[Path] = []
    for p in given:
        if p.is_dir():
            out += sorted(f for f in p.iterdir() if f.is_file() and f.name.endswith(GEO_SUFFIXES))
        elif p.is_file():
            out.append(p)
        else:
            raise InputError(f"--geo {p}: no such file or folder; give a .mmdb, an iptoasn TSV or a folder of them")
    return out


def load_geo(paths: Iterable[Path | str] | None = None) -> GeoDatabases:
    """Open the databases in `paths` (files, or folders of them), in order of preference.

    Without paths, the default folder (`default_geo_dir`) is read if it exists; none at all gives
    databases that know nothing. A file that is neither a .mmdb nor an address table raises
    InputError naming it.
    """
    sources: list[RangeTable | Any] = []
    names: list[str] = []
    try:
        for p in geo_paths(paths):
            sources.append(_open_mmdb(p) if p.name.endswith(".mmdb") else read_range_table(p))
            names.append(str(p))
    except InputError:
        GeoDatabases(tuple(sources), ()).close()
        raise
    return GeoDatabases(tuple(sources), tuple(names))


def geo_for(addresses: pl.Series, dbs: GeoDatabases) -> pl.DataFrame:
    """ASN, AS organisation and country of each distinct address: `client_ip, asn, as_org, country`.

    One row per distinct non-null address as given; a column is null where no database knows it.
    """
    split = split_addresses(addresses)
    out = distinct_addresses(split).with_columns(
        pl.lit(None, pl.Int64).alias(ASN), pl.lit(None, pl.String).alias(AS_ORG), pl.lit(None, pl.String).alias(COUNTRY)
    )
    for i, src in enumerate(dbs.sources):
        found = lookup(split, src.segments) if isinstance(src, RangeTable) else _mmdb_lookup(src, split)
        # The first database that knows a column keeps it: later ones fill only its gaps.
        found = found.rename({c: f"_{c}{i}" for c in _VALUES})
        out = out.join(found, on="client_ip", how="left").with_columns(
            pl.coalesce(c, f"_{c}{i}").alias(c) for c in _VALUES
        )
        out = out.drop([f"_{c}{i}" for c in _VALUES])
    return out.cast(GEO_COLUMNS)  # type: ignore[arg-type]
