"""trafficlens: human, crawler, scraper and agent traffic from a site's access logs.

The public API, for notebooks, schedulers and the dashboard:

    import trafficlens
    trafficlens.analyze(["access.log"], "lake")          # ingest + classify + summary
    with trafficlens.Report("lake") as rep: rep.to_dict()

    from trafficlens.ingest import ingest                # the steps alone, each from its package
    from trafficlens.classify import classify

Names are imported when first used, so `import trafficlens` (and the command's `--help`) stays quick.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from trafficlens.lazy import lazy_exports

__version__ = "0.1.0"

# Public name -> the module that defines it.
_EXPORTS = {
    "analyze": "trafficlens.analysis",
    "AnalyzeResult": "trafficlens.analysis",
    "Report": "trafficlens.report",
    "TrafficlensError": "trafficlens.errors",
}

if TYPE_CHECKING:
    from trafficlens.analysis import AnalyzeResult, analyze
    from trafficlens.errors import TrafficlensError
    from trafficlens.report import Report


__getattr__ = lazy_exports(__name__, _EXPORTS)

__all__ = ["AnalyzeResult", "Report", "TrafficlensError", "__version__", "analyze"]
