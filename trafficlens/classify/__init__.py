"""Classification: every event of the lake labelled, in layers, each label with its reasons.

- `agents`: the user agent catalogue and parser (who a client says it is);
- `verify/`: whether a claim holds (published IP ranges, reverse DNS);
- `pages`: page types and endpoints from request paths;
- `behaviour`, `model`, `training`: how a client behaves, and the models that read it;
- `threats/`: attack rules per request, behavioural threats per client, robots.txt;
- `labels`: the precedence that turns all of these into labels;
- `pipeline`: `classify`, which reads the lake's events and writes requests, sessions and clients.

    from trafficlens.classify import classify
    classify("lake", ranges_dir="ranges")

`classify` is imported when first used, so importing one layer does not load them all.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from trafficlens.lazy import lazy_exports

if TYPE_CHECKING:
    from trafficlens.classify.pipeline import ClassifySummary, classify

_EXPORTS = {"classify": "trafficlens.classify.pipeline", "ClassifySummary": "trafficlens.classify.pipeline"}


__getattr__ = lazy_exports(__name__, _EXPORTS)

__all__ = ["ClassifySummary", "classify"]
