"""trafficlens: human, crawler, scraper and agent traffic from a site's access logs."""

from __future__ import annotations

__version__ = "0.1.0"
