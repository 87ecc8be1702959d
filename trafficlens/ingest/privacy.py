"""Privacy at ingest (DESIGN.md, "Privacy"): client addresses pseudonymised and query values
dropped before anything reaches the lake, in events and in rejects alike.

A pseudonymised address is `NET~KEY`:
- KEY: 16 hex digits of HMAC-SHA256(lake secret, address). One per address, stable within the
  lake, so sessions, clients and "distinct addresses" counts stay what they were. The secret is
  made once per lake (`LAKE/.secret`, mode 0600); without it a key cannot be traced back by
  trying every address.
- NET: the address's network, /24 for IPv4 and /48 for IPv6: its first address in clear
  (`truncate`: 203.0.113.0~…), or keyed hashes of its /16, /24 and /48 laid out the same way
  (`hash`: 4821.9017.3312.0~…, h3fa2:hc91b:h0e4d::~…). Network features (/24, /48) and network
  threats (/16) group by it as they would by the address.
A value that is not an address gets `x` and its key's first digits as NET (a network of its own).

What only the full address can tell is derived before it is dropped: `ip_ranges`, the operators'
published range files holding it (the most specific first), from a lookup the caller passes in
(the range files belong to classify's verification, a layer above); classify verifies claims and
attributes browsers to operators from it. Reverse DNS needs the address itself: it cannot run on
a pseudonymised lake.

Query redaction keeps every key and drops every value except those of the allowed keys (globs,
`utm_*` by default), in `query`, `referer` and `path` (a malformed request keeps its raw target
there); a rejected line loses its values and its addresses the same way. The lake remembers the
choice (`LAKE/privacy.json`), so a later ingest without the options keeps to it.
"""

from __future__ import annotations

import hashlib
import hmac
import ipaddress
import json
import os
import re
import secrets
from collections.abc import Callable
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import TYPE_CHECKING

import polars as pl

from trafficlens.errors import LakeError, OptionError
from trafficlens.ingest.writer import PartWriter
from trafficlens.schema import IP_PRIVACY, PRIVACY_SCHEMA
from trafficlens.store import SECRET_FILE, Lake, Transaction

if TYPE_CHECKING:
    from trafficlens.ingest.options import IngestOptions

MARK = "~"  # between NET and KEY; no address or host name holds one
SETTINGS_FILE = "privacy.json"
DEFAULT_KEEP = ("utm_*",)
# Address -> range files holding it (`client_ip`, `ip_ranges`), for distinct addresses.
RangeLookup = Callable[[pl.Series], pl.DataFrame]

_KEY_CHARS = r"[^=&;#?\s\"']"
_BOUND = r"(^|[?&;#\s\"'])"  # what starts a key=value pair: a URL's separators, a field's start
_VALUE = r"([^&;#?\s\"']*)"
_KEPT = "\ue000"  # stands in for the '=' of a kept pair while the others lose their values
# IPv6 (two colons or more, maybe ending in an IPv4 address) or IPv4, in free text; what it finds
# is checked with ipaddress before anything is replaced.
_ADDRESS_RX = (
    r"(?:[0-9A-Fa-f]{0,4}:){2,7}(?:[0-9]{1,3}(?:\.[0-9]{1,3}){3}|[0-9A-Fa-f]{0,4})"
    r"|\b[0-9]{1,3}(?:\.[0-9]{1,3}){3}\b"
)
_CACHE_LIMIT = 1_000_000  # addresses remembered between chunks before the memory is given back


@dataclass(frozen=True)
class Privacy:
    """What ingest keeps out of the lake. `ip`: None, `truncate` or `hash`."""

    ip: str | None = None
    redact_query: bool = False
    keep_query_values: tuple[str, ...] = DEFAULT_KEEP

    @property
    def active(self) -> bool:
        return self.ip is not None or self.redact_query

    def describe(self) -> str:
        """'addresses truncated (/24, /48); query values dropped but for utm_*'."""
        parts = []
        if self.ip == "truncate":
            parts.append("addresses truncated to /24 and /48 (with a keyed pseudonym)")
        elif self.ip == "hash":
            parts.append("addresses replaced by keyed hashes")
        if self.redact_query:
            kept = ", ".join(self.keep_query_values)
            parts.append("query values dropped" + (f" but for {kept}" if kept else ""))
        return "; ".join(parts) or "off"

    @classmethod
    def load(cls, lake: Lake | str | Path) -> Privacy | None:
        """The choice a lake remembers, if any."""
        store = lake if isinstance(lake, Lake) else Lake(lake)
        try:
            text = store.read_text(SETTINGS_FILE)
            if text is None:
                return None
            doc = json.loads(text)
            return cls(doc["ip"], bool(doc["redact_query"]), tuple(doc["keep_query_values"]))
        except (OSError, ValueError, KeyError, TypeError):
            raise LakeError(
                f"{store.name}/{SETTINGS_FILE} is damaged; delete it and give the privacy options again"
            ) from None


def keep_patterns(text: str | None) -> tuple[str, ...]:
    """`utm_*,ref` -> ('utm_*', 'ref'); refuses what is not a query key or a glob of one."""
    if text is None:
        return DEFAULT_KEEP
    globs = tuple(g.strip() for g in text.split(",") if g.strip())
    for g in globs:
        if not re.fullmatch(r"[A-Za-z0-9_.*\[\]-]+", g):
            raise OptionError(f"--keep-query-values: {g!r} is not a query key; give keys or globs such as utm_*,ref")
    return globs


def resolve(base: Privacy, ip_privacy: str | None, redact_query: bool | None, keep_query_values: str | None) -> Privacy:
    """The privacy options given, over `base` (what a lake remembers): None leaves a setting as
    it is. Refuses values that cannot work, one line each."""
    if ip_privacy is not None and ip_privacy not in IP_PRIVACY:
        raise OptionError(f"--ip-privacy {ip_privacy!r}: choose one of {', '.join(IP_PRIVACY)}")
    ip = base.ip if ip_privacy is None else (None if ip_privacy == "off" else ip_privacy)
    redact = base.redact_query if redact_query is None else redact_query
    keep = base.keep_query_values if keep_query_values is None else keep_patterns(keep_query_values)
    return Privacy(ip, redact, keep)


def check_options(opts: IngestOptions) -> None:
    """Refuse privacy option values that cannot work (one line each)."""
    resolve(Privacy(), opts.ip_privacy, opts.redact_query, opts.keep_query_values)


def chosen(opts: IngestOptions, lake: Lake) -> tuple[Privacy, bool]:
    """The privacy this ingest applies: the options given, else what the lake remembers; and
    whether that differs from what it remembers."""
    base = Privacy.load(lake) or Privacy()
    result = resolve(base, opts.ip_privacy, opts.redact_query, opts.keep_query_values)
    return result, result != base


def lake_secret(lake: Lake) -> bytes:
    """The lake's key for pseudonyms: made once (LAKE/.secret, readable by its owner only; in a lake
    at a URI, an object whose readers the storage's permissions decide)."""
    if lake.remote is not None:
        text = lake.remote.create_once(SECRET_FILE, (secrets.token_hex(32) + "\n").encode()).decode("ascii", "replace")
        try:
            return bytes.fromhex(text.strip())
        except ValueError:
            raise LakeError(f"{lake.name}/{SECRET_FILE} is not a trafficlens key; restore it from a backup") from None
    path = lake.root / SECRET_FILE
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    except FileExistsError:
        pass
    except OSError as e:
        raise LakeError(f"cannot create {path}: {e.strerror}") from None
    else:
        with os.fdopen(fd, "w") as f:
            f.write(secrets.token_hex(32) + "\n")
            f.flush()
            os.fsync(f.fileno())
    try:
        text = path.read_text(encoding="ascii").strip()
        return bytes.fromhex(text)
    except (OSError, ValueError):
        raise LakeError(f"{path} is not a trafficlens key; restore it from a backup of the lake") from None


def _mac(secret: bytes, kind: bytes, value: str, digits: int) -> str:
    message = kind + b"\0" + value.encode("utf-8", "surrogateescape")
    return hmac.new(secret, message, hashlib.sha256).hexdigest()[:digits]


def _address(value: str) -> ipaddress.IPv4Address | ipaddress.IPv6Address | None:
    try:
        ip = ipaddress.ip_address(value.strip().strip("[]").split("%")[0])
    except ValueError:
        return None
    if isinstance(ip, ipaddress.IPv6Address) and ip.ipv4_mapped is not None:
        return ip.ipv4_mapped  # ::ffff:192.0.2.1 is 192.0.2.1
    return ip


def pseudonym(value: str, mode: str, secret: bytes) -> str:
    """One value's pseudonym (see the module's docstring); a pseudonym is returned as it is."""
    if MARK in value:
        return value
    ip = _address(value)
    if ip is None:
        key = _mac(secret, b"value", value, 16)
        return f"x{key[:8]}{MARK}{key}"
    key = _mac(secret, b"address", str(ip), 16)
    if mode == "truncate":
        net = ipaddress.ip_network(f"{ip}/{24 if ip.version == 4 else 48}", strict=False)
        return f"{net.network_address}{MARK}{key}"
    return f"{_hashed_network(ip, secret)}{MARK}{key}"


def _hashed_network(ip: ipaddress.IPv4Address | ipaddress.IPv6Address, secret: bytes) -> str:
    """The networks of an address as keyed hashes, laid out as the address's own: IPv4 /16 and /24
    as `A.B.C.0` (A.B from the /16, C from the /24; numbers from 1000 up, so never an address),
    IPv6 /48 as `hX:hY:hZ::`. Addresses of one network share its part, as in clear."""

    def part(prefix: int, kind: bytes) -> str:
        net = ipaddress.ip_network(f"{ip}/{prefix}", strict=False)
        return _mac(secret, kind, str(net), 12)

    if ip.version == 4:
        h16, h24 = part(16, b"net16"), part(24, b"net24")
        a, b, c = (1000 + int(h, 16) % 9000 for h in (h16[:6], h16[6:], h24[:6]))
        return f"{a}.{b}.{c}.0"
    h48 = part(48, b"net48")
    return ":".join("h" + h48[i : i + 4] for i in (0, 4, 8)) + "::"


def redact_pairs(expr: pl.Expr, keep: tuple[str, ...]) -> pl.Expr:
    """Every `key=value` in a query, URL or raw line with its value dropped, but for the keys `keep`
    matches (globs, any case). Vectorised: the kept pairs are set aside by a placeholder first."""
    if keep:
        alts = "|".join(re.escape(g).replace(r"\*", _KEY_CHARS + "*") for g in keep)
        expr = expr.str.replace_all(_BOUND + f"((?i:{alts}))=" + _VALUE, "${1}${2}" + _KEPT + "${3}")
    expr = expr.str.replace_all(_BOUND + f"({_KEY_CHARS}+)=" + _VALUE, "${1}${2}=")
    return expr.str.replace_all(_KEPT, "=", literal=True) if keep else expr


class Pseudonymiser:
    """Applies a `Privacy` to parsed chunks: events and rejects in, the same rows out."""

    def __init__(self, privacy: Privacy, secret: bytes, ranges: RangeLookup | None = None) -> None:
        self.privacy = privacy
        self.secret = secret
        self.ranges = ranges
        self._tokens: dict[str, str] = {}
        self._ranges: dict[str, list[str] | None] = {}

    def _known(self, values: pl.Series, with_ranges: bool) -> None:
        """Pseudonyms (and range files) of the distinct values not seen before, once each."""
        distinct = values.unique().drop_nulls().to_list()
        if len(self._tokens) + len(distinct) > _CACHE_LIMIT:
            self._tokens.clear()
            self._ranges.clear()
        mode = self.privacy.ip or "hash"
        self._tokens.update((v, pseudonym(v, mode, self.secret)) for v in distinct if v not in self._tokens)
        if with_ranges and self.ranges is not None:
            # An address seen before only in a header (forwarded_for) has no ranges looked up yet.
            unseen = [v for v in distinct if v not in self._ranges]
            if unseen:
                found = self.ranges(pl.Series("client_ip", unseen, pl.String))
                self._ranges.update(zip(found["client_ip"].to_list(), found["ip_ranges"].to_list()))

    def pseudonyms(self, values: list[str]) -> list[str]:
        """The pseudonym of each value (one given already is returned as it is)."""
        self._known(pl.Series(values, dtype=pl.String), with_ranges=False)
        return [self._tokens[v] for v in values]

    def _addresses(self, ips: pl.Series) -> pl.DataFrame:
        """client_ip (as logged) -> _token, ip_ranges, for the distinct addresses of a chunk."""
        self._known(ips, with_ranges=True)
        distinct = ips.unique().drop_nulls().to_list()
        return pl.DataFrame(
            {
                "client_ip": distinct,
                "_token": [self._tokens[v] for v in distinct],
                "ip_ranges": [self._ranges.get(v) for v in distinct],
            },
            schema={"client_ip": pl.String, "_token": pl.String, **PRIVACY_SCHEMA},
        )

    def _in_text(self, frame: pl.DataFrame, column: str) -> pl.Expr:
        """`column` with every address it holds replaced by its pseudonym."""
        found = frame.select(pl.col(column).str.extract_all(_ADDRESS_RX).explode().unique().drop_nulls()).to_series()
        candidates = [v for v in found.to_list() if MARK not in v and _address(v) is not None]
        if not candidates:
            return pl.col(column)
        candidates.sort(key=len, reverse=True)  # at one place, the longest address wins
        return pl.col(column).str.replace_many(candidates, self.pseudonyms(candidates), leftmost=True)

    def events(self, events: pl.DataFrame) -> pl.DataFrame:
        p = self.privacy
        if p.ip:
            marks = self._addresses(events.get_column("client_ip"))
            # Rows pseudonymised before (a lake redacted again) keep the ranges recorded then.
            recorded = [pl.col("ip_ranges").fill_null(pl.col("_looked_up"))] if "ip_ranges" in events.columns else []
            events = (
                events.join(
                    marks.rename({"ip_ranges": "_looked_up"} if recorded else {}),
                    on="client_ip",
                    how="left",
                    maintain_order="left",
                )
                .with_columns(
                    *recorded, client_ip=pl.col("_token"), forwarded_for=self._in_text(events, "forwarded_for")
                )
                .drop("_token", *(["_looked_up"] if recorded else []))
            )
        if p.redact_query:
            keep = p.keep_query_values
            events = events.with_columns(
                query=redact_pairs(pl.col("query"), keep),
                referer=redact_pairs(pl.col("referer"), keep),
                path=redact_pairs(pl.col("path"), keep),
            )
        return events

    def rejects(self, rejects: pl.DataFrame) -> pl.DataFrame:
        if not rejects.height:
            return rejects
        if self.privacy.ip:
            rejects = rejects.with_columns(raw=self._in_text(rejects, "raw"))
        if self.privacy.redact_query:
            rejects = rejects.with_columns(raw=redact_pairs(pl.col("raw"), self.privacy.keep_query_values))
        return rejects


class PrivateWriter(PartWriter):
    """A PartWriter that pseudonymises each chunk on its writing thread, before it is buffered."""

    def __init__(self, tx: Transaction, pseudonymiser: Pseudonymiser, tag: str = "") -> None:
        self.pseudonymiser = pseudonymiser  # set before the writing thread starts
        super().__init__(tx, tag)

    def _add(self, events: pl.DataFrame, rejects: pl.DataFrame) -> None:
        super()._add(self.pseudonymiser.events(events), self.pseudonymiser.rejects(rejects))


def protection(opts: IngestOptions, lake: Lake, tx: Transaction) -> tuple[Privacy, bytes]:
    """The privacy a run applies and the lake's key when it pseudonymises (else empty); a changed
    choice is recorded in the lake by the run."""
    privacy, changed = chosen(opts, lake)
    if changed:
        tx.path(SETTINGS_FILE).write_text(json.dumps(asdict(privacy)) + "\n", encoding="utf-8")
    return privacy, lake_secret(lake) if privacy.active else b""


def protected_writer(
    tx: Transaction, opts: IngestOptions, privacy: Privacy, secret: bytes, tag: str = ""
) -> PartWriter:
    """The run's writer: a plain PartWriter, or one that applies the lake's privacy choice with its
    key (`protection`). `tag`: see PartWriter."""
    if not privacy.active:
        return PartWriter(tx, tag)
    ranges = opts.address_ranges if privacy.ip else None
    return PrivateWriter(tx, Pseudonymiser(privacy, secret, ranges), tag)


__all__ = [
    "DEFAULT_KEEP",
    "MARK",
    "Privacy",
    "PrivateWriter",
    "Pseudonymiser",
    "RangeLookup",
    "check_options",
    "chosen",
    "keep_patterns",
    "lake_secret",
    "protected_writer",
    "protection",
    "pseudonym",
    "redact_pairs",
    "resolve",
]
