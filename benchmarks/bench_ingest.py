"""Ingest speed and peak memory: trafficlens against a plain polars pipeline (and GoAccess).

    python benchmarks/bench_ingest.py                      # 10 million lines (about 2.5 GB)
    python benchmarks/bench_ingest.py --lines 1000000 --gzip --skip-goaccess
    python benchmarks/bench_ingest.py --repeat 3           # best of 3 on a busy machine

The log is generated once into benchmarks/data/ (gen_log.py) and reused. Each tool runs in its own
subprocess; its wall time gives lines/s and the kernel's accounting for that one child (wait4)
gives its peak RSS. The baseline is what a competent person would write in ten lines of polars:
scan the lines, split them on quotes and spaces, cast status and bytes, sink Parquet. The bar:
trafficlens at >= 0.7x the baseline's lines/s measured in the same run, and peak RSS under 1 GB.
Results go to benchmarks/out/ingest.json as well. The exit status is 1 when a check fails, 2 when
a tool fails to run.
"""

from __future__ import annotations

import argparse
import gzip
import json
import os
import platform
import shutil
import subprocess
import sys
import time
from dataclasses import asdict, dataclass, field
from importlib import metadata
from pathlib import Path

# This process stays small (no polars, no numpy here): a child's peak RSS as the kernel counts it
# starts from the size of the process that spawned it.
HERE = Path(__file__).resolve().parent
DATA = HERE / "data"
OUT = HERE / "out"
RATIO_BAR = 0.7
RSS_BAR_MB = 1000.0  # 1 GB = 10^9 bytes
MB = 1e6

# The baseline: scan lines (a separator that never occurs, no quoting), split, cast, sink Parquet.
BASELINE = r"""
import sys
import polars as pl

src, out = sys.argv[1], sys.argv[2]
q = pl.col("line").str.split('"')
head = q.list.get(0).str.split_exact(" ", 5)   # ip ident user [date zone]
req = q.list.get(1).str.split_exact(" ", 2)    # method path protocol
tail = q.list.get(2).str.split_exact(" ", 3)   # status bytes
f = lambda s, i: s.struct.field(f"field_{i}")
(
    pl.scan_csv(src, has_header=False, separator="\x1f", quote_char=None,
                new_columns=["line"], schema={"line": pl.String})
    .select(
        client_ip=f(head, 0),
        ts=f(head, 3).str.strip_prefix("[") + " " + f(head, 4).str.strip_suffix("]"),
        method=f(req, 0), path=f(req, 1), protocol=f(req, 2),
        status=f(tail, 1).cast(pl.Int32, strict=False),
        bytes=f(tail, 2).cast(pl.Int64, strict=False),
        referer=q.list.get(3, null_on_oob=True),
        user_agent=q.list.get(5, null_on_oob=True),
    )
    .sink_parquet(out)
)
"""

# Rows written, read back after a run (outside the timed child).
COUNT_ROWS = r"""
import glob, json, sys
import pyarrow.parquet as pq

def rows(pattern):
    return sum(pq.ParquetFile(p).metadata.num_rows for p in glob.glob(pattern))

print(json.dumps({k: rows(v) for k, v in json.loads(sys.argv[1]).items()}))
"""


@dataclass
class Run:
    tool: str
    input: str
    lines: int
    seconds: float = 0.0  # wall time, best of the repeats
    cpu_seconds: float = 0.0  # user + system time of that run
    peak_rss_mb: float = 0.0  # the highest of the repeats
    lines_per_s: float = 0.0
    vs_baseline: float | None = None
    vs_goaccess: float | None = None
    ok: bool = True
    others_cpu: float | None = None  # share of all cores that other processes used during the run
    rows: dict = field(default_factory=dict)
    note: str = ""


def log(msg: str) -> None:
    print(msg, file=sys.stderr, flush=True)


def busy_cpu_seconds() -> float | None:
    """CPU time the whole machine has spent busy so far (Linux), to tell what others used."""
    try:
        with open("/proc/stat") as fh:
            f = [int(x) for x in fh.readline().split()[1:]]
    except (OSError, ValueError):
        return None
    user, nice, system, _idle, _iowait, irq, softirq, steal = (f + [0] * 8)[:8]
    return (user + nice + system + irq + softirq + steal) / os.sysconf("SC_CLK_TCK")


@dataclass
class Measured:
    wall: float  # seconds
    cpu: float  # user + system seconds of the child
    rss_mb: float  # the child's peak RSS
    others: float | None  # share of the machine's CPU other processes used meanwhile
    error: str = ""


def measure(cmd: list[str], name: str) -> Measured:
    """Run `cmd` as a child, timed, with its own peak RSS as the kernel accounts it."""
    OUT.mkdir(parents=True, exist_ok=True)
    with open(OUT / f"{name}.stdout", "wb") as out, open(OUT / f"{name}.stderr", "wb") as err:
        busy = busy_cpu_seconds()
        started = time.perf_counter()
        proc = subprocess.Popen(cmd, stdin=subprocess.DEVNULL, stdout=out, stderr=err)
        _, status, usage = os.wait4(proc.pid, 0)  # this child's own resource usage
        wall = time.perf_counter() - started
        busy_after = busy_cpu_seconds()
    proc.returncode = code = os.waitstatus_to_exitcode(status)
    rss = usage.ru_maxrss * (1 if sys.platform == "darwin" else 1024) / MB  # bytes on macOS, KiB on Linux
    cpu = usage.ru_utime + usage.ru_stime
    others = None
    if busy is not None and busy_after is not None and wall > 0:
        others = max(0.0, (busy_after - busy - cpu) / (wall * (os.cpu_count() or 1)))
    return Measured(wall, cpu, rss, others, "" if code == 0 else f"exit {code}: {tail_of(name)}")


def tail_of(name: str) -> str:
    text = (OUT / f"{name}.stderr").read_text(errors="replace").strip().splitlines()
    return text[-1] if text else "(no message)"


def ensure_log(lines: int, seed: int) -> Path:
    path = DATA / f"combined-{lines}.log"
    if path.exists():
        log(f"using {path.relative_to(HERE.parent)} ({path.stat().st_size / 1e9:.2f} GB)")
        return path
    log(f"generating {path.relative_to(HERE.parent)} ({lines:,} lines) ...")
    subprocess.run(
        [sys.executable, str(HERE / "gen_log.py"), "--lines", str(lines), "--out", str(path), "--seed", str(seed)],
        check=True,
    )
    return path


def ensure_gzip(plain: Path) -> Path:
    path = plain.with_name(plain.name + ".gz")
    if path.exists() and path.stat().st_mtime >= plain.stat().st_mtime:
        log(f"using {path.relative_to(HERE.parent)} ({path.stat().st_size / 1e9:.2f} GB)")
        return path
    log(f"compressing to {path.relative_to(HERE.parent)} (gzip -6) ...")
    tmp = path.with_name(f".{path.name}.partial")
    with open(plain, "rb") as src, gzip.open(tmp, "wb", compresslevel=6) as dst:
        shutil.copyfileobj(src, dst, 1 << 20)
    os.replace(tmp, path)
    return path


def warm(path: Path) -> None:
    """Read the file once so every tool reads it from the page cache, not the disk."""
    buf = bytearray(8 << 20)
    with open(path, "rb", buffering=0) as fh:
        while fh.readinto(buf):
            pass


def count_rows(patterns: dict[str, Path]) -> dict[str, int]:
    got = subprocess.run(
        [sys.executable, "-c", COUNT_ROWS, json.dumps({k: str(v) for k, v in patterns.items()})],
        check=True,
        capture_output=True,
        text=True,
    )
    return json.loads(got.stdout)


def run_baseline(src: Path) -> Measured:
    out = OUT / "baseline.parquet"
    out.unlink(missing_ok=True)
    return measure([sys.executable, "-c", BASELINE, str(src), str(out)], "baseline")


def run_trafficlens(src: Path, name: str) -> Measured:
    lake = OUT / f"lake-{name}"
    shutil.rmtree(lake, ignore_errors=True)
    return measure(
        [sys.executable, "-m", "trafficlens", "ingest", str(src), "--lake", str(lake), "--no-progress"], name
    )


def run_goaccess(exe: str, src: Path) -> Measured:
    report = OUT / "goaccess.json"
    report.unlink(missing_ok=True)
    cmd = [exe, str(src), "--log-format=COMBINED", "--no-global-config", "--no-progress", "-o", str(report)]
    return measure(cmd, "goaccess")


def best_of(repeat: int, fn, *args) -> tuple[Measured, float]:
    """The fastest of `repeat` runs (or the first that failed), and the highest peak RSS of them."""
    best: Measured | None = None
    peak = 0.0
    for _ in range(repeat):
        m = fn(*args)
        peak = max(peak, m.rss_mb)
        if m.error:
            return m, peak
        if best is None or m.wall < best.wall:
            best = m
    assert best is not None
    return best, peak


def version_of(cmd: list[str]) -> str:
    try:
        out = subprocess.run(cmd, capture_output=True, text=True, timeout=30).stdout.strip()
        return out.splitlines()[0] if out else "?"
    except (OSError, subprocess.SubprocessError):
        return "?"


def table(runs: list[Run]) -> str:
    head = ["tool", "lines", "seconds", "lines/s", "peak RSS MB", "vs polars", "vs GoAccess", "CPU s", "others' CPU"]
    rows = []
    for r in runs:
        if not r.ok:
            rows.append([r.tool, f"{r.lines:,}", "-", "-", "-", "-", "-", "-", f"FAILED: {r.note}"])
            continue
        rows.append(
            [
                r.tool,
                f"{r.lines:,}",
                f"{r.seconds:.1f}",
                f"{r.lines_per_s:,.0f}",
                f"{r.peak_rss_mb:,.0f}",
                f"{r.vs_baseline:.2f}x" if r.vs_baseline is not None else "-",
                f"{r.vs_goaccess:.2f}x" if r.vs_goaccess is not None else "-",
                f"{r.cpu_seconds:.1f}",
                f"{r.others_cpu:.0%}" if r.others_cpu is not None else "-",
            ]
        )
    widths = [max(len(str(x)) for x in col) for col in zip(head, *rows)]
    fmt = lambda cells: "  ".join(  # noqa: E731
        (c.ljust(w) if i == 0 else c.rjust(w)) for i, (c, w) in enumerate(zip(cells, widths))
    )
    return "\n".join([fmt(head), fmt(["-" * w for w in widths]), *map(fmt, rows)])


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--lines", type=int, default=10_000_000, help="lines in the generated log (default 10,000,000)")
    ap.add_argument("--skip-goaccess", action="store_true", help="do not run GoAccess even if it is installed")
    ap.add_argument("--gzip", action="store_true", help="also ingest a gzip copy of the log")
    ap.add_argument("--repeat", type=int, default=1, help="runs of the baseline and of trafficlens; the fastest counts")
    ap.add_argument("--seed", type=int, default=42, help="seed for a newly generated log")
    a = ap.parse_args(argv)
    if a.lines < 1 or a.repeat < 1:
        ap.error("--lines and --repeat must be at least 1")

    OUT.mkdir(parents=True, exist_ok=True)
    plain = ensure_log(a.lines, a.seed)
    gz = ensure_gzip(plain) if a.gzip else None
    warm(plain)
    if gz is not None:
        warm(gz)
    goaccess = None if a.skip_goaccess else shutil.which("goaccess")

    runs: list[Run] = []

    def record(tool: str, src: Path, result: tuple[Measured, float]) -> Run:
        m, peak = result
        r = Run(tool, src.name, a.lines, round(m.wall, 3), round(m.cpu, 2), round(peak, 1))
        r.others_cpu = None if m.others is None else round(m.others, 3)
        r.ok, r.note = not m.error, m.error
        r.lines_per_s = round(a.lines / m.wall) if r.ok and m.wall > 0 else 0.0
        runs.append(r)
        log(
            f"  {tool}: "
            + (f"{m.wall:.1f}s, {r.lines_per_s:,.0f} lines/s, peak RSS {peak:,.0f} MB" if r.ok else m.error)
        )
        return r

    log(f"polars baseline (best of {a.repeat}) ...")
    base = record("polars baseline", plain, best_of(a.repeat, run_baseline, plain))
    log(f"trafficlens ingest (best of {a.repeat}) ...")
    tl = record("trafficlens", plain, best_of(a.repeat, run_trafficlens, plain, "trafficlens"))
    tl_gz = None
    if gz is not None:
        log("trafficlens ingest, gzip ...")
        tl_gz = record("trafficlens (gzip)", gz, best_of(1, run_trafficlens, gz, "trafficlens-gzip"))
    ga = None
    if goaccess:
        log("GoAccess ...")
        ga = record("GoAccess", plain, best_of(1, run_goaccess, goaccess, plain))
    else:
        log("GoAccess: skipped (" + ("--skip-goaccess" if a.skip_goaccess else "not installed") + ")")

    # What each tool wrote, as a check that the lines were really read.
    if base.ok:
        base.rows = count_rows({"rows": OUT / "baseline.parquet"})
    for r, name in ((tl, "trafficlens"), (tl_gz, "trafficlens-gzip")):
        if r is not None and r.ok:
            lake = OUT / f"lake-{name}"
            r.rows = count_rows(
                {"events": lake / "events" / "*" / "*.parquet", "rejects": lake / "rejects" / "*.parquet"}
            )
            if r.rows["events"] + r.rows["rejects"] != a.lines:
                r.note = f"{r.rows['events'] + r.rows['rejects']:,} events + rejects for {a.lines:,} lines"
    if ga is not None and ga.ok:
        try:
            general = json.loads((OUT / "goaccess.json").read_text())["general"]
            ga.rows = {k: general.get(k) for k in ("total_requests", "valid_requests", "failed_requests")}
        except (OSError, ValueError, KeyError):
            pass

    for r in runs:
        if r.ok and base.ok and base.lines_per_s:
            r.vs_baseline = round(r.lines_per_s / base.lines_per_s, 3)
        if r.ok and ga is not None and ga.ok and ga.lines_per_s:
            r.vs_goaccess = round(r.lines_per_s / ga.lines_per_s, 3)

    checks: list[tuple[str, bool]] = []
    if tl.ok and base.ok:
        checks.append(
            (
                f"trafficlens >= {RATIO_BAR}x polars baseline ({tl.vs_baseline:.2f}x)",
                tl.vs_baseline is not None and tl.vs_baseline >= RATIO_BAR,
            )
        )
    for r in (tl, tl_gz):
        if r is not None and r.ok:
            checks.append((f"{r.tool} peak RSS < 1 GB ({r.peak_rss_mb:,.0f} MB)", r.peak_rss_mb < RSS_BAR_MB))
            if r.note:
                checks.append((f"{r.tool} keeps every line ({r.note})", False))

    cores = os.cpu_count()
    busiest = max((r.others_cpu or 0.0 for r in runs), default=0.0)
    print()
    print(
        f"{a.lines:,}-line combined log ({plain.stat().st_size / 1e9:.2f} GB); {cores} cores; "
        f"Python {platform.python_version()}, polars {metadata.version('polars')}, "
        f"trafficlens {metadata.version('trafficlens')}"
        + (f", {version_of([goaccess, '--version'])}" if goaccess else "")
    )
    print()
    print(table(runs))
    print()
    for r in runs:
        if r.rows:
            print(
                f"{r.tool}: " + ", ".join(f"{k} {v:,}" if isinstance(v, int) else f"{k} {v}" for k, v in r.rows.items())
            )
    if busiest > 0.05:
        print(
            f"note: other processes used up to {busiest:.0%} of the CPU during a run, so the figures may be "
            f"noisy (rerun, or use --repeat)"
        )
    print()
    for label, passed in checks:
        print(f"{'PASS' if passed else 'FAIL'}  {label}")

    report = {
        "lines": a.lines,
        "log_bytes": plain.stat().st_size,
        "cores": cores,
        "python": platform.python_version(),
        "polars": metadata.version("polars"),
        "trafficlens": metadata.version("trafficlens"),
        "goaccess": version_of([goaccess, "--version"]) if goaccess else None,
        "repeat": a.repeat,
        "when": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
        "runs": [asdict(r) for r in runs],
        "checks": [{"check": label, "passed": passed} for label, passed in checks],
    }
    (OUT / "ingest.json").write_text(json.dumps(report, indent=2) + "\n")
    print(f"\nresults: {(OUT / 'ingest.json').relative_to(HERE.parent)}")
    if not all(r.ok for r in runs):
        return 2
    return 0 if all(passed for _, passed in checks) else 1


if __name__ == "__main__":
    sys.exit(main())
