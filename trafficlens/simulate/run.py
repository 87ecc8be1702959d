"""The entry point: `simulate()` writes a site's log for a number of days, a day at a time, and
the truth and range files beside it; `SimulateSummary` says what it wrote."""

from __future__ import annotations

import datetime as dt
import io
import os
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import polars as pl

from trafficlens.errors import OptionError
from trafficlens.progress import Progress
from trafficlens.schema import SITE_LAYOUTS
from trafficlens.simulate.addresses import published_ranges, write_hosting, write_ranges
from trafficlens.simulate.families import select_families
from trafficlens.simulate.output import FORMATS, Output, Renderer, w3c_directives
from trafficlens.simulate.robots import Obedience, change_day, write_robots_versions
from trafficlens.simulate.scenarios import SCENARIOS
from trafficlens.simulate.sim import Sim
from trafficlens.simulate.site import SITE_KINDS, R

DEFAULT_START = dt.date(2025, 10, 6)  # fixed, so a seed alone fixes the output
SLICE_ROWS = 100_000  # rows rendered at once: bounds the memory of the line strings


@dataclass
class SimulateSummary:
    """What one simulation wrote."""

    path: Path
    truth_path: Path
    lines: int  # physical lines in the log (W3C directive lines included)
    days: int
    scenarios: dict[str, int]  # log lines per scenario
    seconds: float
    format: str = "combined"
    bytes: int = 0
    ranges_dir: Path | None = None
    families: dict[str, int] = field(default_factory=dict)  # log lines per family
    site_layout: str = "origin"

    @property
    def events(self) -> int:
        return sum(self.scenarios.values())

    def describe(self) -> str:
        top = ", ".join(f"{k} {v:,}" for k, v in sorted(self.scenarios.items(), key=lambda kv: -kv[1]) if v)
        ranges = f", ranges in {self.ranges_dir}" if self.ranges_dir else ""
        layout = f", {self.site_layout} layout" if self.site_layout != "origin" else ""
        return (
            f"{self.path}: {self.lines:,} lines ({self.format}, {self.days} days{layout}, {self.bytes / 1e6:.1f} MB), "
            f"truth in {self.truth_path.name}{ranges}; {self.seconds:.1f}s; {top}"
        )


def simulate(
    out: str | Path,
    *,
    fmt: str = "combined",
    days: int = 7,
    seed: int = 0,
    scale: float = 1.0,
    site_kind: str = "shop",
    start: dt.date | None = None,
    site: str = "www.example-shop.com",
    ranges_out: str | Path | None = None,
    progress: bool | None = None,
    families: Sequence[str] | str | None = None,
    site_layout: str = "origin",
    incidents: bool = False,
    robots_out: str | Path | None = None,
) -> SimulateSummary:
    """Write a labelled synthetic access log to `out` and its truth to `<out>.truth.parquet`.

        Example: `simulate("sample.log.gz", days=7, seed=1, ranges_out="ranges/")`. `scale` multiplies
        the volumes (1.0 is about 130,000 lines a week, 95,000-175,000 as the seed sets the site's
    analytics beacons); the same arguments give the same bytes.
        `families` chooses the kinds of clients (default: all; see `families.select_families`, e.g.
        `["human:tab_opener"]`, or `"-human:tab_opener"` for all others): the people of the families
        chosen make as many visits as all people do in the full mix. `site_layout` is where the
        site's assets come from (`SITE_LAYOUTS`): `origin`, `cdn` (no asset in the log, whoever asks)
        or `spa` (a single-page app: one document, then API calls for each screen). `incidents` adds
        the last day's incidents that `trafficlens alerts` should report (scenarios/incidents.py).
        `robots_out` writes the site's robots.txt versions there (simulate/robots.py), a change
        in the middle of the run that the crawlers honouring it obey once they read it again.
    """
    if fmt not in FORMATS:
        raise OptionError(f"unknown format {fmt!r}; choose one of {', '.join(FORMATS)}")
    if site_kind not in SITE_KINDS:
        raise OptionError(f"unknown site kind {site_kind!r}; choose one of {', '.join(SITE_KINDS)}")
    if site_layout not in SITE_LAYOUTS:
        raise OptionError(f"unknown site layout {site_layout!r}; choose one of {', '.join(SITE_LAYOUTS)}")
    if days < 1 or not scale > 0 or seed < 0:
        raise OptionError("days must be at least 1, scale above 0 and seed not negative")
    chosen = select_families(families)
    began = time.perf_counter()
    path = Path(out)
    truth_path = path.with_name(path.name + ".truth.parquet")
    start = start or DEFAULT_START
    sim = Sim(
        seed=seed,
        scale=scale,
        days=days,
        site_kind=site_kind,
        start=start,
        site=site,
        layout=site_layout,
        families=chosen,
        incidents=incidents,
    )
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp_log = path.with_name(path.name + ".partial")
    tmp_truth = truth_path.with_name(truth_path.name + ".partial")
    bar = Progress(None, "simulate", enabled=progress)
    counts = dict.fromkeys(SCENARIOS, 0)
    per_family: dict[str, int] = dict.fromkeys(chosen, 0)
    line_no = 0
    terminator = "\r\n" if fmt == "w3c" else "\n"  # IIS writes CRLF
    output = Output(tmp_log, tmp_truth, gz=path.name.endswith(".gz"))
    renderer = Renderer(sim, fmt, seed)
    obedience = None
    if robots_out is not None:
        write_robots_versions(robots_out, start, days)
        change_us = int(np.datetime64(start + dt.timedelta(days=change_day(days)), "us").astype(np.int64))
        obedience = Obedience(sim.profiles, int(sim.site.off[R["robots"]]), change_us)
    try:
        carry: pl.DataFrame | None = None
        written = 0
        for d in range(days):
            bar.start_source(f"day {d + 1}/{days}")
            day_bytes = 0
            frame = sim.day_frame(d)
            if carry is not None:
                frame = pl.concat([carry, frame])
            if obedience is not None:
                frame = obedience.apply(frame)
            # A stable sort (ties keep their order, so runs repeat), one copy of the frame.
            ts = frame["ts"].to_numpy()
            order = np.argsort(ts, kind="stable")
            frame = frame.select(pl.all().gather(order))
            # Visits running past midnight go on in the next day's chunk; the last day ends there.
            end = int(np.datetime64(start + dt.timedelta(days=d + 1), "us").astype(np.int64))
            cut = int(np.searchsorted(ts[order], end, side="left"))
            del ts, order
            carry = frame.slice(cut) if d < days - 1 else None
            frame = frame.slice(0, cut)
            if fmt == "w3c":
                # A directive block per day, as IIS writes when its log starts again.
                head = w3c_directives(start + dt.timedelta(days=d), terminator)
                output.put(head)
                day_bytes += len(head)
                line_no += 4
            for off in range(0, frame.height, SLICE_ROWS):
                rows = frame.slice(off, SLICE_ROWS)
                lines, truth = renderer.render(rows, line_no + 1)
                buf = io.BytesIO()
                pl.DataFrame({"l": lines}).write_csv(
                    buf, include_header=False, quote_style="never", line_terminator=terminator
                )
                output.put(buf.getvalue(), truth.to_arrow(compat_level=pl.CompatLevel.oldest()))
                day_bytes += buf.tell()
                line_no += rows.height
                for name, cnt in truth.group_by("scenario").len().iter_rows():
                    counts[name] += cnt
                for name, cnt in truth.group_by("family").len().iter_rows():
                    per_family[name] += cnt
                bar.update(day_bytes, rows.height)
            written += day_bytes
            del frame
        output.close()
        os.replace(tmp_log, path)
        os.replace(tmp_truth, truth_path)
    except BaseException:
        output.stop()
        for p in (tmp_log, tmp_truth):
            p.unlink(missing_ok=True)
        raise
    finally:
        bar.close()
    ranges_dir = None
    if ranges_out is not None:
        write_ranges(ranges_out, published_ranges(), start)
        write_hosting(ranges_out, start)
        ranges_dir = Path(ranges_out)
    return SimulateSummary(
        path=path,
        truth_path=truth_path,
        lines=line_no,
        days=days,
        scenarios=counts,
        seconds=time.perf_counter() - began,
        format=fmt,
        bytes=path.stat().st_size,
        ranges_dir=ranges_dir,
        families=per_family,
        site_layout=site_layout,
    )
