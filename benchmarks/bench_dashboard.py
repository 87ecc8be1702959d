"""Dashboard speed: how long each page takes to render on a large lake, first and after.

    python benchmarks/bench_dashboard.py                       # the classify benchmark's lake (10M requests)
    python benchmarks/bench_dashboard.py --lake trafficlens-lake
    python benchmarks/bench_dashboard.py --browser            # also in Chromium, through the real server

Each page runs in Streamlit's AppTest (the script, its report sections and explorer queries,
and every element it draws, without a browser). The first run of the first page reads the lake
into the report's tables; the first run of each page computes its sections; after that a page
is timed as a new visitor opening it (a fresh session, the cache warm) and as a rerun of the
same session (a widget changed). The target: every page under 2 s after the first load.
A last row times the Overview after a filter change, which reads the lake again.
With --browser, `trafficlens dashboard` serves the lake and headless Chromium (Playwright)
clicks through the sidebar twice: each page's time is from the click until its script has run
and its charts are drawn. Results go to benchmarks/out/dashboard.json as well.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
PAGES = ROOT / "dashboards" / "views"
OUT = HERE / "out"
ORDER = ("overview", "operators", "agents_at_work", "security", "client_explorer", "referrals", "data_quality")
TARGET_S = 2.0


def _timed_run(at: object) -> float:
    t = time.perf_counter()
    at.run()  # type: ignore[attr-defined]
    return time.perf_counter() - t


def _problems(at: object) -> list[str]:
    return [e.value for e in at.exception] + [e.value for e in at.error]  # type: ignore[attr-defined]


def browser_times(lake: Path) -> dict[str, dict[str, float]]:
    """Seconds from a sidebar click to a drawn page, first visit and second visit, in Chromium."""
    import signal
    import socket
    import subprocess
    import urllib.request

    from playwright.sync_api import sync_playwright

    titles = {
        "overview": "Overview",
        "operators": "AI operators and agents",
        "agents_at_work": "Agents at work",
        "security": "Security",
        "client_explorer": "Client explorer",
        "referrals": "Referrals and robots.txt",
        "data_quality": "Data quality",
    }
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    proc = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "trafficlens",
            "dashboard",
            "--lake",
            str(lake),
            "--port",
            str(port),
            "--host",
            "127.0.0.1",
        ],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        start_new_session=True,
    )
    url = f"http://127.0.0.1:{port}/"
    times: dict[str, dict[str, float]] = {}
    try:
        for _ in range(300):
            try:
                with urllib.request.urlopen(url + "_stcore/health", timeout=2):
                    break
            except OSError:
                time.sleep(0.2)
        with sync_playwright() as pw:
            browser = pw.chromium.launch(
                executable_path="/usr/bin/chromium",
                headless=True,
                args=[
                    "--no-sandbox",
                    "--disable-gpu",
                    "--disable-background-networking",
                    "--disable-component-update",
                    "--disable-sync",
                    "--no-first-run",
                ],
            )
            page = browser.new_page(viewport={"width": 1440, "height": 900})
            ready = """() => !document.querySelector('[data-testid="stStatusWidget"] button, [data-testid="stStatusWidget"] img')
                           && [...document.querySelectorAll('.vega-embed')].every(e => e.querySelector('svg, canvas'))"""
            for visit in ("first", "second"):
                for name in ORDER:
                    t = time.perf_counter()
                    if visit == "first" and name == ORDER[0]:
                        page.goto(url)
                    else:
                        page.locator('[data-testid="stSidebarNav"] a', has_text=titles[name]).first.click()
                    page.wait_for_selector(f"h1:has-text('{titles[name]}')", timeout=900_000)
                    page.wait_for_timeout(150)  # the status widget appears a moment after the click
                    page.wait_for_function(ready, timeout=900_000)
                    times.setdefault(name, {})[visit] = round(time.perf_counter() - t, 3)
            browser.close()
    finally:
        os.killpg(proc.pid, signal.SIGTERM)
        proc.wait(timeout=30)
    return times


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--lake", default=str(HERE / "data" / "classify-lake"), help="lake to render (read only)")
    ap.add_argument("--runs", type=int, default=3, help="timed runs per page after the first")
    ap.add_argument("--browser", action="store_true", help="also time each page in Chromium through the server")
    args = ap.parse_args(argv)
    lake = Path(args.lake).resolve()
    if not (lake / "requests").is_dir():
        print(f"no classified lake at {lake}: run `make bench` (or give --lake DIR)", file=sys.stderr)
        return 2
    os.environ["TRAFFICLENS_LAKE"] = str(lake)
    from streamlit.testing.v1 import AppTest

    from trafficlens.report import Report

    with Report(lake) as rep:
        requests = int(rep.totals()["requests"])
    print(f"lake {lake}: {requests:,} requests\n")
    rows: list[dict] = []
    failed = False
    for name in ORDER:
        script = str(PAGES / f"{name}.py")
        first_at = AppTest.from_file(script, default_timeout=900)
        first = _timed_run(first_at)
        visits = []
        for _ in range(args.runs):
            at = AppTest.from_file(script, default_timeout=900)
            visits.append(_timed_run(at))
        reruns = [_timed_run(first_at) for _ in range(args.runs)]
        problems = _problems(first_at) + _problems(at)
        failed |= bool(problems)
        row = {
            "page": name,
            "first_s": round(first, 3),
            "visit_median_s": round(statistics.median(visits), 3),
            "visit_max_s": round(max(visits), 3),
            "rerun_median_s": round(statistics.median(reruns), 3),
            "problems": problems,
        }
        rows.append(row)
        print(
            f"  {name:<16} first {first:6.2f} s   then {row['visit_median_s']:.2f} s (max {row['visit_max_s']:.2f})",
            file=sys.stderr,
        )
    # A changed filter is a new Report: the lake is read again (the first load, once more).
    at = AppTest.from_file(str(PAGES / "overview.py"), default_timeout=900)
    at.run()
    at.multiselect(key="tl_classes").set_value(["agent"])
    refilter = _timed_run(at)
    failed |= bool(_problems(at))

    print(f"\n{'page':<16} {'first load s':>12} {'after, new session s':>21} {'max s':>6} {'rerun s':>8}")
    for r in rows:
        flag = "" if r["visit_max_s"] < TARGET_S else "  over target"
        print(
            f"{r['page']:<16} {r['first_s']:>12.2f} {r['visit_median_s']:>21.2f} {r['visit_max_s']:>6.2f} "
            f"{r['rerun_median_s']:>8.2f}{flag}" + (f"  FAILED: {r['problems'][0][:80]}" if r["problems"] else "")
        )
    print(f"\noverview after a class filter change (reads the lake again): {refilter:.2f} s")
    slowest = max(r["visit_max_s"] for r in rows)
    browser = browser_times(lake) if args.browser else {}
    if browser:
        print(f"\n{'in Chromium':<16} {'first visit s':>13} {'second visit s':>15}")
        for name, t in browser.items():
            print(f"{name:<16} {t['first']:>13.2f} {t['second']:>15.2f}")
        slowest = max(slowest, *(t["second"] for t in browser.values()))
    print(f"\nslowest page after the first load: {slowest:.2f} s (target {TARGET_S:.0f} s)")
    OUT.mkdir(parents=True, exist_ok=True)
    (OUT / "dashboard.json").write_text(
        json.dumps(
            {
                "lake": str(lake),
                "requests": requests,
                "runs": args.runs,
                "target_s": TARGET_S,
                "pages": rows,
                "overview_filter_change_s": round(refilter, 3),
                "browser": browser,
                "slowest_after_first_load_s": slowest,
            },
            indent=1,
        )
    )
    return 1 if failed or slowest >= TARGET_S else 0


if __name__ == "__main__":
    sys.exit(main())
