"""Web Bot Auth: HTTP message signatures (RFC 9421) checked from what the access log recorded.

A signed agent sends `Signature-Agent` (where its key directory is), `Signature-Input` (the
covered components and the `created`, `expires`, `keyid`, `nonce`, `tag="web-bot-auth"`
parameters) and `Signature`. Logs that record the three headers (README: the nginx, Apache,
Caddy and Envoy settings) let trafficlens check them offline against key directories fetched
by `trafficlens keys update` from `https://<host>/.well-known/http-message-signatures-directory`
and cached with the date they were fetched.

The signature itself is checked by `http-message-signatures` (Ed25519 through `cryptography`),
once per distinct signed message; the time window (against the time the request arrived, not
now), the key's validity and nonce replay are polars expressions over the requests.
"""

from __future__ import annotations

import base64
import concurrent.futures as cf
import functools
import hashlib
import json
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import http_sf
import polars as pl
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey
from http_message_signatures import HTTPMessageVerifier, HTTPSignatureComponentResolver, MappingKeyResolver, algorithms
from http_message_signatures.exceptions import HTTPMessageSignaturesException

from trafficlens.classify.verify.cache import default_keys_dir, write_atomic
from trafficlens.classify.verify.download import http_get, why, write_bytes
from trafficlens.errors import InputError, RangesDownloadError, TrafficlensError
from trafficlens.schema import UTC_TS

WEB_BOT_AUTH_TAG = "web-bot-auth"
DIRECTORY_PATH = "/.well-known/http-message-signatures-directory"
MAX_DIRECTORY_BYTES = 1 << 20

KEYS_SCHEMA: dict[str, pl.DataType] = {
    "agent_host": pl.String(),  # the host whose directory lists the key (chatgpt.com)
    "keyid": pl.String(),  # the JWK thumbprint (RFC 7638) signatures name it by
    "x": pl.String(),  # the Ed25519 public key, base64url as in the JWK
    "not_before": UTC_TS,  # the JWK's nbf, if any
    "not_after": UTC_TS,  # the JWK's exp, if any
    "fetched": UTC_TS,  # when the directory was fetched
}
# What verify_signatures adds to each signed request.
SIGNATURE_RESULT: dict[str, pl.DataType] = {
    "signature_status": pl.String(),  # one of SIGNATURE_STATUSES
    "signature_host": pl.String(),  # the signer's host (Signature-Agent, else the directory holding the key)
    "signature_keyid": pl.String(),
    "signature_reason": pl.String(),  # sig:web-bot-auth:<host>:<keyid> when valid, else sig:<status>:<host>:<keyid>
}
# Seconds a signer's clock may differ from the server's.
CLOCK_SKEW = timedelta(seconds=5)
# A signature without `expires` is accepted this long after `created` (Web Bot Auth requires
# `expires`; this covers other RFC 9421 signers).
DEFAULT_MAX_AGE = timedelta(minutes=5)


# --- key directories --------------------------------------------------------------------------


def jwk_thumbprint(jwk: dict[str, Any]) -> str:
    """RFC 7638 thumbprint of an OKP key: what Web Bot Auth signers put in `keyid`."""
    canonical = json.dumps({"crv": jwk["crv"], "kty": jwk["kty"], "x": jwk["x"]}, separators=(",", ":"), sort_keys=True)
    return base64.urlsafe_b64encode(hashlib.sha256(canonical.encode()).digest()).rstrip(b"=").decode()


def _b64url(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


def _when(seconds: object) -> datetime | None:
    return datetime.fromtimestamp(seconds, UTC) if isinstance(seconds, (int, float)) else None


def parse_directory(data: bytes | dict[str, Any], host: str, fetched: datetime) -> pl.DataFrame:
    """A key directory (a JWKS: {"keys": [{"kty": "OKP", "crv": "Ed25519", "x": ...}]}) -> KEYS_SCHEMA rows.

    Keys of other types are skipped (only Ed25519 is used by Web Bot Auth); raises ValueError
    when the document holds no Ed25519 key at all.
    """
    doc = json.loads(data) if isinstance(data, bytes) else data
    keys = doc.get("keys") if isinstance(doc, dict) else None
    if not isinstance(keys, list):
        raise ValueError("is not a key directory (a JSON object with a list of keys)")
    rows = []
    for k in keys:
        if not (isinstance(k, dict) and k.get("kty") == "OKP" and k.get("crv") == "Ed25519"):
            continue
        x = k.get("x")
        if not isinstance(x, str) or len(_b64url(x)) != 32:
            raise ValueError(f"key {k.get('kid', '?')!r} has no valid Ed25519 public key x")
        ids = {jwk_thumbprint(k)} | ({k["kid"]} if isinstance(k.get("kid"), str) else set())
        for keyid in sorted(ids):
            rows.append((host.lower(), keyid, x, _when(k.get("nbf")), _when(k.get("exp")), fetched))
    if not rows:
        raise ValueError("holds no Ed25519 key")
    return pl.DataFrame(rows, schema=KEYS_SCHEMA, orient="row")


@dataclass(frozen=True)
class KeyDirectory:
    """The signers' public keys, from their cached key directories."""

    keys: pl.DataFrame = field(default_factory=lambda: pl.DataFrame(schema=KEYS_SCHEMA))  # KEYS_SCHEMA

    @property
    def hosts(self) -> tuple[str, ...]:
        return tuple(sorted(set(self.keys["agent_host"].to_list())))


def load_keys(dir: Path | str | None = None) -> KeyDirectory:
    """The key directories cached in `dir` (default: `default_keys_dir`), one `<host>.json` each.

    A missing default folder gives no keys (every signature is then `unknown_key`); a folder
    given that does not exist, or a file that is not a cached directory, raises InputError.
    """
    folder = Path(dir) if dir is not None else default_keys_dir()
    if not folder.is_dir():
        if dir is None:
            return KeyDirectory()
        raise InputError(f"{folder}: no such folder of key directories; run `trafficlens keys update --dir {folder}`")
    frames = []
    for path in sorted(folder.glob("*.json")):
        try:
            cached = json.loads(path.read_bytes())
            fetched = datetime.fromisoformat(cached["fetched"])
            frames.append(parse_directory(cached["directory"], cached["host"], fetched))
        except (OSError, ValueError, KeyError, TypeError) as e:
            why = e.strerror if isinstance(e, OSError) else str(e)
            raise InputError(
                f"key directory {path} cannot be read ({why}); run `trafficlens keys update` again or remove it"
            ) from None
    return KeyDirectory(pl.concat(frames) if frames else pl.DataFrame(schema=KEYS_SCHEMA))


# --- fetching directories (`trafficlens keys update`) ----------------------------------------

Fetch = Callable[[str, float], bytes]


def _http_get(url: str, timeout: float) -> bytes:
    accept = "application/http-message-signatures-directory+json, application/json;q=0.9"
    return http_get(url, timeout, purpose="key directory update", accept=accept, limit=MAX_DIRECTORY_BYTES)


@dataclass
class KeysUpdateResult:
    """What one `update_keys` run did, host by host."""

    dest: Path
    updated: list[str] = field(default_factory=list)
    unchanged: list[str] = field(default_factory=list)
    failed: dict[str, str] = field(default_factory=dict)  # host -> why; its previous copy is kept

    def describe(self) -> str:
        """One line for the CLI."""
        got = len(self.updated) + len(self.unchanged)
        line = f"{got} of {got + len(self.failed)} key directories current in {self.dest} ({len(self.updated)} updated)"
        if self.failed:
            line += "; kept the previous copy of " + ", ".join(f"{h} ({w})" for h, w in sorted(self.failed.items()))
        return line


def signer_hosts() -> tuple[str, ...]:
    """The hosts of the signed agents the catalogue knows (their `signature_agent`)."""
    from trafficlens.classify.agents import load_catalogue

    return tuple(sorted(load_catalogue().by_signature_agent()))


def _host_of(value: str) -> str:
    host = value.strip().strip('"').lower().removeprefix("https://").removeprefix("http://").split("/")[0]
    if not host or any(c in host for c in " \"'\\@?#"):
        raise InputError(f"--host {value!r} is not a host name; give one like chatgpt.com")
    return host


def update_keys(
    hosts: Iterable[str] = (),
    dest: Path | str | None = None,
    timeout: float = 20,
    *,
    fetch: Fetch | None = None,
    now: datetime | None = None,
) -> KeysUpdateResult:
    """Fetch the key directory of each host (default: the catalogue's signed agents) into `dest`.

    Each answer must be a directory holding an Ed25519 key before it replaces the cached copy,
    atomically, as `<host>.json` with the date it was fetched. A failed fetch keeps the previous
    copy; when none succeeds, raises RangesDownloadError and changes nothing.
    """
    wanted = sorted({_host_of(h) for h in hosts} or set(signer_hosts()))
    folder = Path(dest) if dest is not None else default_keys_dir()
    get = fetch or _http_get
    stamp = (now or datetime.now(UTC)).astimezone(UTC).replace(microsecond=0)
    result = KeysUpdateResult(folder)
    docs: dict[str, dict[str, Any]] = {}
    with cf.ThreadPoolExecutor(max_workers=max(1, min(8, len(wanted)))) as pool:
        futures = {pool.submit(get, f"https://{h}{DIRECTORY_PATH}", timeout): h for h in wanted}
        for fut in cf.as_completed(futures):
            host = futures[fut]
            try:
                data = fut.result()
                if len(data) > MAX_DIRECTORY_BYTES:
                    raise ValueError("is larger than 1 MB, not a key directory")
                doc = json.loads(data)
                parse_directory(doc, host, stamp)
                docs[host] = doc
            except Exception as e:  # noqa: BLE001 - a failure of one host only skips that host
                result.failed[host] = "not a key directory" if isinstance(e, json.JSONDecodeError) else why(e)
    if not docs:
        first = next(iter(sorted(result.failed.items())), ("", "no hosts"))
        raise RangesDownloadError(
            f"could not fetch any key directory ({first[0]}: {first[1]}); check the network connection, "
            "or copy a folder of cached directories from elsewhere; nothing was changed"
        )
    try:
        folder.mkdir(parents=True, exist_ok=True)
        for host in wanted:
            if host not in docs:
                continue
            path = folder / f"{host}.json"
            if path.is_file():
                try:
                    if json.loads(path.read_bytes()).get("directory") == docs[host]:
                        result.unchanged.append(host)
                        continue
                except (ValueError, AttributeError):
                    pass  # an unreadable old copy is replaced
            body = {"host": host, "url": f"https://{host}{DIRECTORY_PATH}", "fetched": stamp.isoformat()}
            payload = json.dumps({**body, "directory": docs[host]}, indent=1).encode()
            write_atomic(path, functools.partial(write_bytes, data=payload))
            result.updated.append(host)
    except OSError as e:
        raise TrafficlensError(
            f"cannot write key directories to {folder}: {e.strerror}; choose a writable folder"
        ) from None
    return result


# --- verifying --------------------------------------------------------------------------------


@dataclass
class _Message:
    """The parts of a request a signature can cover that an access log holds."""

    method: str
    url: str
    headers: dict[str, str]


_PARAMS_SCHEMA: dict[str, pl.DataType] = {
    "_crypto": pl.String(),  # valid, invalid, unknown_key, unverifiable: the signature alone
    "signature_keyid": pl.String(),
    "_key_host": pl.String(),
    "_created": UTC_TS,
    "_expires": UTC_TS,
    "_nonce": pl.String(),
    "_not_before": UTC_TS,
    "_not_after": UTC_TS,
}
# Components that need the request's target (path and query) from the log.
_NEEDS_TARGET = ('"@path"', '"@target-uri"', '"@request-target"', '"@query"', '"@query-param"')


def _select_member(sig_input: str) -> tuple[str, dict[str, Any]] | None:
    """The label and parameters of the Web Bot Auth member of Signature-Input (else the only one)."""
    parsed: dict[str, Any] = http_sf.parse(sig_input.encode(), tltype="dictionary")  # type: ignore[assignment]
    members: list[tuple[str, dict[str, Any]]] = [
        (label, params) for label, (value, params) in parsed.items() if isinstance(value, list)
    ]
    tagged = [m for m in members if m[1].get("tag") == WEB_BOT_AUTH_TAG]
    if tagged:
        return tagged[0]
    return members[0] if len(members) == 1 else None


def _check_one(row: dict[str, Any], keys: dict[str, list[tuple[str, str, Any, Any]]]) -> tuple[Any, ...]:
    """One distinct signed message -> _PARAMS_SCHEMA values (the crypto verdict and the parameters)."""
    none: tuple[Any, ...] = (None,) * 7
    try:
        member = _select_member(row["signature_input"])
    except Exception:  # noqa: BLE001 - a header that is not a structured dictionary is a bad signature
        return ("invalid", *none)
    if member is None:
        return ("invalid", *none)
    label, params = member
    keyid = params.get("keyid") if isinstance(params.get("keyid"), str) else None
    created, expires = _when(params.get("created")), _when(params.get("expires"))
    nonce = params.get("nonce") if isinstance(params.get("nonce"), str) else None
    agent = row["_agent_host"]
    # The key must come from the directory the request points at; without Signature-Agent, from any.
    found = [k for k in keys.get(keyid or "", []) if agent is None or k[0] == agent]
    if keyid is None or created is None:
        return ("invalid", keyid, agent, created, expires, nonce, None, None)
    if not found:
        return ("unknown_key", keyid, agent, created, expires, nonce, None, None)
    key_host, x, nbf, exp = found[0]
    sig_input = row["signature_input"]
    path = (row["_m_path"] or "/") + (f"?{row['_m_query']}" if row["_m_query"] else "")
    authority = row["host"] or "authority.invalid"
    if row["host"] is None and '"@authority"' in sig_input:
        return ("unverifiable", keyid, key_host, created, expires, nonce, nbf, exp)
    headers = {"Signature": row["signature"], "Signature-Input": sig_input}
    if row["signature_agent"] is not None:
        headers["Signature-Agent"] = row["signature_agent"]
    url = f"https://{authority}{path}"
    message = _Message((row["_m_method"] or "GET").upper(), url, headers)
    try:
        HTTPSignatureComponentResolver(message)
    except HTTPMessageSignaturesException:  # the log's path is not a URL as sent (raw spaces, ...)
        return ("unverifiable", keyid, key_host, created, expires, nonce, nbf, exp)
    public = Ed25519PublicKey.from_public_bytes(_b64url(x))
    verifier = _LogVerifier(
        signature_algorithm=algorithms.ED25519,
        key_resolver=MappingKeyResolver(public_keys={keyid: public}, private_keys={}),
    )
    try:
        tag = params.get("tag")
        verifier.verify(
            message,
            max_age=None,
            expect_tag=tag if isinstance(tag, str) else None,
            expect_label=label if isinstance(tag, str) else None,
        )
        status = "valid"
    except HTTPMessageSignaturesException as e:
        text = str(e)
        status = "unverifiable" if "not found in the message" in text else "invalid"
    except Exception:  # noqa: BLE001 - malformed bytes, a URL the log mangled: not a valid signature
        status = "invalid"
    return (status, keyid, key_host, created, expires, nonce, nbf, exp)


class _LogVerifier(HTTPMessageVerifier):
    """The library's verifier without its clock: the window is checked against the request's time."""

    def validate_created_and_expires(self, sig_input: Any, max_age: Any = None) -> None:
        return None


def _agent_host(e: pl.Expr) -> pl.Expr:
    """Signature-Agent -> host: `"https://chatgpt.com"`, `sig1="https://chatgpt.com"` or bare."""
    return (
        e.str.strip_chars()
        .str.replace(r'^[a-z*][a-z0-9_.*-]*="', '"')
        .str.strip_chars('" ')
        .str.to_lowercase()
        .str.replace(r"^https?://", "")
        .str.replace(r"[/:].*$", "")
    )


def verify_signatures(
    requests: pl.DataFrame, keys: KeyDirectory, now: datetime | None = None, *, max_age: timedelta = DEFAULT_MAX_AGE
) -> pl.DataFrame:
    """The signed requests among `requests`, each with its verdict (SIGNATURE_RESULT columns).

    `requests` has the event columns `ts, host, method, path, query, signature_agent, signature,
    signature_input` (others, such as `client_ip, user_agent, site`, pass through). A request is
    judged at the time it arrived (`ts`; `now`, default the current time, where it has none):
    `expired` outside created..expires (or created + `max_age` without expires, with CLOCK_SKEW
    either side) or outside its key's nbf..exp; `replayed` when its nonce was used by an earlier
    request under the same key; `valid` otherwise if the signature verifies over the components
    the log holds. The signature is checked once per distinct signed message.
    """
    at = (now or datetime.now(UTC)).astimezone(UTC)
    passed = [c for c in requests.columns if c not in SIGNATURE_RESULT]
    if not {"signature", "signature_input"} <= set(requests.columns):  # a lake ingested before they were kept
        return (
            requests.clear().select(*passed).with_columns(pl.lit(None, t).alias(c) for c, t in SIGNATURE_RESULT.items())
        )
    # Columns a log may lack are null: a component that needs one is then `unverifiable`.
    requests = requests.with_columns(
        pl.lit(None, pl.String).alias(c)
        for c in ("host", "method", "path", "query", "signature_agent")
        if c not in requests.columns
    )
    signed = requests.filter(pl.col("signature").is_not_null() & pl.col("signature_input").is_not_null())
    # A message is what the signature covers: the method and target only where it covers them, so
    # an agent's signature over @authority and signature-agent is checked once, whatever it fetched.
    covers_target = pl.col("signature_input").str.contains("|".join(_NEEDS_TARGET), literal=False)
    covers_method = pl.col("signature_input").str.contains('"@method"', literal=True)
    signed = signed.with_row_index("_row").with_columns(
        _agent_host=_agent_host(pl.col("signature_agent")),
        _m_method=pl.when(covers_method).then(pl.col("method")),
        _m_path=pl.when(covers_target).then(pl.col("path")),
        _m_query=pl.when(covers_target).then(pl.col("query")),
    )
    message_cols = ["host", "_m_method", "_m_path", "_m_query", "signature_agent", "signature", "signature_input"]
    distinct = signed.select(*message_cols, "_agent_host").unique(message_cols)
    index: dict[str, list[tuple[str, str, Any, Any]]] = {}
    for host, keyid, x, nbf, exp in keys.keys.select("agent_host", "keyid", "x", "not_before", "not_after").iter_rows():
        index.setdefault(keyid, []).append((host, x, nbf, exp))
    checked = pl.DataFrame(
        [_check_one(row, index) for row in distinct.iter_rows(named=True)], schema=_PARAMS_SCHEMA, orient="row"
    )
    verdicts = pl.concat([distinct, checked], how="horizontal")
    when = pl.coalesce(pl.col("ts"), pl.lit(at, UTC_TS)) if "ts" in signed.columns else pl.lit(at, UTC_TS)
    until = pl.coalesce(pl.col("_expires"), pl.col("_created") + max_age)
    out_of_window = (
        (when < pl.col("_created") - CLOCK_SKEW)
        | (when > until + CLOCK_SKEW)
        | (pl.col("_not_before").is_not_null() & (when < pl.col("_not_before")))
        | (pl.col("_not_after").is_not_null() & (when > pl.col("_not_after")))
    )
    nonce_of = ["signature_keyid", "_nonce"]
    judged = (
        signed.join(verdicts.drop("_agent_host"), on=message_cols, how="left", nulls_equal=True)
        .with_columns(_when=when)
        .with_columns(_late=out_of_window.fill_null(False))
        # Only signatures that verify and arrived in their window use up a nonce: a forged or stale
        # copy arriving first must not turn the genuine request into a replay.
        .with_columns(_spends=(pl.col("_crypto") == "valid") & ~pl.col("_late") & pl.col("_nonce").is_not_null())
        .with_columns(_first=pl.col("_when").filter(pl.col("_spends")).min().over(nonce_of))
        .with_columns(
            _first_row=pl.col("_row")
            .filter(pl.col("_spends") & (pl.col("_when") == pl.col("_first")))
            .min()
            .over(nonce_of)
        )
        .with_columns(_replay=pl.col("_spends") & (pl.col("_row") != pl.col("_first_row")))
    )
    status = (
        pl.when(pl.col("_crypto") != "valid")
        .then(pl.col("_crypto"))
        .when(pl.col("_late"))
        .then(pl.lit("expired"))
        .when(pl.col("_replay"))
        .then(pl.lit("replayed"))
        .otherwise(pl.lit("valid"))
    )
    host = pl.coalesce(pl.col("_agent_host"), pl.col("_key_host"))
    reason_kind = (
        pl.when(pl.col("signature_status") == "valid")
        .then(pl.lit(WEB_BOT_AUTH_TAG))
        .otherwise(pl.col("signature_status"))
    )
    result = (
        judged.with_columns(signature_status=status, signature_host=host)
        .with_columns(
            signature_reason=pl.concat_str(
                pl.lit("sig:"),
                reason_kind,
                pl.lit(":"),
                pl.col("signature_host").fill_null("-"),
                pl.lit(":"),
                pl.col("signature_keyid").fill_null("-"),
            )
        )
        .sort("_row")
    )
    return result.select(*passed, *SIGNATURE_RESULT).cast(SIGNATURE_RESULT)  # type: ignore[arg-type]
