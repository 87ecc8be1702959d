"""Report section on where traffic comes from: countries and network owners per class, the share
of each class sent from hosting providers' ranges, and the undeclared automation per provider.

It reads the clients' network columns (`country`, `asn`, `as_org`, `hosting`: see schema.py),
which classify adds when given ASN/country databases (--geo) and hosting range files. A lake
classified without them, or before they existed, gets empty tables and a note saying so.
"""

from __future__ import annotations

from typing import Any

import polars as pl

from trafficlens.classify.verify import hosting_sources
from trafficlens.report.core import ReportBase, section
from trafficlens.schema import ACTOR_CLASSES, AS_ORG, ASN, COUNTRY, HOSTING, HOSTING_SERVICE
from trafficlens.store import sql_literal

# The tables of the section, and the clients' columns each needs.
NETWORK_TABLES: dict[str, tuple[str, ...]] = {
    "by_country": (COUNTRY,),
    "by_network": (ASN, AS_ORG),
    "hosting_share": (HOSTING,),
    "undeclared_by_provider": (HOSTING, HOSTING_SERVICE),
}


def provider_names() -> dict[str, str]:
    """Each hosting provider's id (the clients' `hosting`) and its name for readers."""
    return {s.provider: s.name for s in hosting_sources()}


def _per_class(col: str = "requests") -> str:
    """One column per actor class: the requests of that class."""
    return ", ".join(
        f"coalesce(sum({col}) FILTER (actor_class = {sql_literal(c)}), 0)::BIGINT AS {c}" for c in ACTOR_CLASSES
    )


class NetworkSections(ReportBase):
    """Countries, networks and hosting providers of the traffic."""

    def _network_columns(self) -> set[str]:
        return set(self.con.sql("SELECT * FROM clients LIMIT 0").columns)

    @section
    def network(self) -> dict[str, Any]:
        """`by_country` and `by_network` (requests and clients, with the requests of each class),
        `hosting_share` (per class: the requests and clients from hosting providers' ranges) and
        `undeclared_by_provider` (undeclared automation, i.e. browser-like user agents behaving as
        automation, per hosting provider, with the provider's name as `provider`); `missing` lists the clients' network columns the lake
        lacks and `note` says what adds them."""
        have = self._network_columns()
        missing = sorted({c for cols in NETWORK_TABLES.values() for c in cols} - have)
        cols = [c for c in (COUNTRY, ASN, AS_ORG, HOSTING, HOSTING_SERVICE) if c in have]
        nulls = {COUNTRY: "VARCHAR", ASN: "BIGINT", AS_ORG: "VARCHAR", HOSTING: "VARCHAR", HOSTING_SERVICE: "VARCHAR"}
        fill = [f"NULL::{t} AS {c}" for c, t in nulls.items() if c not in have]
        # One row per client: the report's clients (`x`) get their network columns by id.
        self.con.execute(
            f"""CREATE OR REPLACE TEMP TABLE net AS
                SELECT hash(client_id) AS cid, {", ".join([*cols, *fill])}
                FROM clients {self._where(times=False)}"""
        )
        self.con.execute(
            "CREATE OR REPLACE TEMP TABLE xn AS SELECT x.*, net.* EXCLUDE (cid) FROM x JOIN net USING (cid)"
        )
        total = "(SELECT sum(requests) FROM xn)"
        by_country = self.q(
            f"""SELECT {COUNTRY}, sum(requests)::BIGINT AS requests, sum(requests) / {total} AS share,
                       count(DISTINCT cid) AS clients, {_per_class()}
                FROM xn GROUP BY 1 ORDER BY requests DESC, {COUNTRY} NULLS LAST"""
        )
        by_network = self.q(
            f"""SELECT {ASN}, any_value({AS_ORG}) AS {AS_ORG}, sum(requests)::BIGINT AS requests,
                       sum(requests) / {total} AS share, count(DISTINCT cid) AS clients, {_per_class()}
                FROM xn GROUP BY 1 ORDER BY requests DESC, {ASN} NULLS LAST"""
        )
        order = ", ".join(f"({sql_literal(c)}, {i})" for i, c in enumerate(ACTOR_CLASSES))
        hosting_share = self.q(
            f"""WITH o(actor_class, o) AS (VALUES {order})
                SELECT actor_class, sum(requests)::BIGINT AS requests,
                       coalesce(sum(requests) FILTER ({HOSTING} IS NOT NULL), 0)::BIGINT AS hosting_requests,
                       coalesce(sum(requests) FILTER ({HOSTING} IS NOT NULL), 0) / sum(requests) AS hosting_share,
                       count(DISTINCT cid) AS clients,
                       count(DISTINCT cid) FILTER ({HOSTING} IS NOT NULL) AS hosting_clients
                FROM xn LEFT JOIN o USING (actor_class) GROUP BY actor_class, o ORDER BY o"""
        )
        undeclared = self.q(
            f"""SELECT {HOSTING}, sum(requests)::BIGINT AS requests,
                       sum(requests) / (SELECT sum(requests) FROM xn WHERE identity = 'undeclared') AS share,
                       count(DISTINCT cid) AS clients,
                       coalesce(list(DISTINCT {HOSTING_SERVICE} ORDER BY {HOSTING_SERVICE})
                                FILTER ({HOSTING_SERVICE} IS NOT NULL), []) AS services
                FROM xn WHERE identity = 'undeclared' AND {HOSTING} IS NOT NULL
                GROUP BY 1 ORDER BY requests DESC, {HOSTING}"""
        )
        # Reports and the dashboard name the provider ("Amazon Web Services"), not its id ("aws").
        undeclared = undeclared.with_columns(
            pl.col(HOSTING)
            .replace_strict(provider_names(), default=pl.col(HOSTING), return_dtype=pl.String)
            .alias("provider")
        )
        note = None
        if missing:
            note = (
                f"the clients carry no {', '.join(missing)}: classify with ASN/country databases (--geo) and the "
                "hosting providers' range files (trafficlens ranges update) to add them"
            )
        frames = {
            "by_country": by_country,
            "by_network": by_network,
            "hosting_share": hosting_share,
            "undeclared_by_provider": undeclared,
        }
        # A table whose columns the lake lacks would only count everything as unknown: leave it empty.
        for name, needs in NETWORK_TABLES.items():
            if not set(needs[:1]) <= have:
                frames[name] = frames[name].clear()
        return {"missing": missing, "note": note, **frames}
