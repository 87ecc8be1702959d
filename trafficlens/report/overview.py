"""Report sections on what the lake holds: what was read and what could not be (data quality), the
status and format mix, and the busiest paths, user agents and addresses (`trafficlens analyze`'s
summary)."""

from __future__ import annotations

from typing import Any

import polars as pl

from trafficlens.report.core import ReportBase, section


class LakeSections(ReportBase):
    """The lake's sources and rejects, and its requests as they were logged."""

    @section
    def data_quality(self) -> dict[str, Any]:
        """What was ingested (sources) and what could not be read (rejects by reason and source)."""
        sources = (
            self.q(
                """SELECT source, any_value(format) AS format, sum(events)::BIGINT AS events,
                          sum(rejects)::BIGINT AS rejects, count(*) AS runs, max(ingested_at) AS last_ingested
                   FROM manifest GROUP BY 1 ORDER BY events DESC, source"""
            )
            if self.lake.has_manifest()
            else pl.DataFrame(
                schema={
                    "source": pl.String,
                    "format": pl.String,
                    "events": pl.Int64,
                    "rejects": pl.Int64,
                    "runs": pl.Int64,
                    "last_ingested": pl.Datetime("us", "UTC"),
                }
            )
        )
        rejects = self.q(
            """SELECT source, regexp_replace(reason, ':.*', '') AS reason, count(*) AS lines,
                      any_value(raw) AS example
               FROM rejects GROUP BY 1, 2 ORDER BY lines DESC, source, reason"""
        )
        events = int(sources["events"].sum() or 0)
        n_rejects = int(rejects["lines"].sum() or 0)
        summary = {
            "sources": sources.height,
            "events": events,
            "rejects": n_rejects,
            "reject_share": n_rejects / (events + n_rejects) if events + n_rejects else 0.0,
        }
        return {"summary": summary, "sources": sources, "rejects": rejects}

    @section
    def status(self) -> pl.DataFrame:
        """Requests per status class (2xx, 3xx, ...)."""
        return self.q(
            f"""SELECT (status // 100)::VARCHAR || 'xx' AS status, count(*) AS requests
                FROM requests {self.where} GROUP BY 1 ORDER BY 1"""
        )

    @section
    def formats(self) -> pl.DataFrame:
        """Requests per log format."""
        return self.q(f"SELECT format, count(*) AS requests FROM requests {self.where} GROUP BY 1 ORDER BY 2 DESC, 1")

    @section
    def user_agents(self) -> int:
        """How many distinct user agents sent requests."""
        return int(self.con.sql(f"SELECT count(DISTINCT user_agent) FROM requests {self.where}").fetchall()[0][0])

    @section
    def top_paths(self) -> pl.DataFrame:
        """The most requested paths."""
        return self.q(
            f"""SELECT path, count(*) AS requests FROM requests {self.where}
                GROUP BY 1 ORDER BY 2 DESC, 1 LIMIT {self.top}"""
        )

    @section
    def top_user_agents(self) -> pl.DataFrame:
        """The user agents that sent the most requests."""
        return self.q(
            f"""SELECT coalesce(user_agent, '(none)') AS user_agent, count(*) AS requests FROM requests {self.where}
                GROUP BY 1 ORDER BY 2 DESC, 1 LIMIT {self.top}"""
        )

    @section
    def top_addresses(self) -> pl.DataFrame:
        """The addresses that sent the most requests, with how many user agents each used."""
        return self.q(
            f"""SELECT client_ip, count(*) AS requests, count(DISTINCT user_agent) AS user_agents
                FROM requests {self.where} GROUP BY 1 ORDER BY 2 DESC, 1 LIMIT {self.top}"""
        )
