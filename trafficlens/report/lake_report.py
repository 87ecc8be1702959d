"""The Report: every section group over one lake, and the list of sections in the JSON report."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from trafficlens.errors import OptionError
from trafficlens.report.actors import ActorSections
from trafficlens.report.alerts import AlertSections
from trafficlens.report.core import jsonable
from trafficlens.report.discovery import DiscoverySections
from trafficlens.report.network import NetworkSections
from trafficlens.report.overview import LakeSections
from trafficlens.report.purpose import PurposeSections
from trafficlens.report.referrals import AI_WINDOW_S, ReferralSections
from trafficlens.report.replay import Pricing, ReplaySections
from trafficlens.report.robots_history import RobotsHistorySections
from trafficlens.report.threats import ThreatSections
from trafficlens.report.traffic import TrafficSections

SECTIONS = (
    "period",
    "totals",
    "shares",
    "likely_automated",
    "ai_share",
    "ai_breakdown",
    "operators",
    "agents",
    "verification",
    "page_types",
    "trends",
    "growth",
    "threats",
    "referrals",
    "inferred_referrals",
    "robots",
    "robots_history",
    "discovery",
    "purpose_check",
    "pay_per_crawl",
    "bandwidth",
    "network",
    "alerts",
    "data_quality",
)


class Report(
    TrafficSections,
    ActorSections,
    ThreatSections,
    ReplaySections,
    PurposeSections,
    ReferralSections,
    DiscoverySections,
    RobotsHistorySections,
    NetworkSections,
    AlertSections,
    LakeSections,
):
    """The report sections over one lake, filtered by period, sites and classes.

    `since` and `until` are dates (both inclusive) or times (`until` exclusive); `by` is the
    trend period (day, week or month). Each section is a method returning a polars DataFrame
    (or a dict of them); results are computed once per Report.
    """

    def __init__(
        self,
        lake: str | Path,
        *args: Any,
        pricing: str | Path | None = None,
        ai_window: float = AI_WINDOW_S,
        **kwargs: Any,
    ) -> None:
        # A bad pricing file or window is said before the lake is read.
        self.pricing = Pricing.load(pricing)
        if not 0 < ai_window <= 86_400:
            raise OptionError(f"--ai-window {ai_window:g}: give seconds, more than 0 and at most a day (86400)")
        self.ai_window = float(ai_window)
        super().__init__(lake, *args, **kwargs)

    def sections(self, names: tuple[str, ...] | list[str] = SECTIONS) -> dict[str, Any]:
        """The named sections (default: all), in order, as frames and dicts."""
        unknown = [n for n in names if n not in SECTIONS]
        if unknown:
            raise OptionError(f"no report section {unknown[0]!r}: choose from {', '.join(SECTIONS)}")
        return {name: getattr(self, name)() for name in names}

    def to_dict(self, names: tuple[str, ...] | list[str] = SECTIONS) -> dict[str, Any]:
        """The sections as plain JSON-ready values (frames become lists of row dicts)."""
        return jsonable(self.sections(names))


def build_report(lake: str | Path, **filters: Any) -> dict[str, Any]:
    """Every section of the report over `lake` as JSON-ready values (see Report for filters)."""
    with Report(lake, **filters) as rep:
        return rep.to_dict()
