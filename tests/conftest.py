from __future__ import annotations

import contextlib
import fcntl
import os
import shutil
import signal
import socket
import subprocess
import tempfile
import time
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
FIXTURES = Path(__file__).resolve().parent / "fixtures"
# Real data written by others, kept beside the project (never inside it); absent on a user's checkout.
EXTERNAL = Path(os.environ.get("TRAFFICLENS_EXTERNAL", ROOT.parent / "shared" / "external"))


# The longest files first: `make test` runs the files on several workers, each file whole on one, and
# a long one started last would run alone at the end.
SLOW_FIRST = ("test_spark.py", "test_behaviour.py", "test_classify.py", "test_dashboard_browser.py")


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    rank = {name: i for i, name in enumerate(SLOW_FIRST)}
    items.sort(key=lambda item: rank.get(item.path.name, len(rank)))  # stable: a file keeps its order


def external(*parts: str) -> Path:
    """A path under ../shared/external, or skip the test when that data is not there."""
    p = EXTERNAL.joinpath(*parts)
    if not p.exists():
        pytest.skip(f"external evaluation data not available ({'/'.join(parts)})")
    return p


@pytest.fixture
def lake(tmp_path: Path) -> Path:
    return tmp_path / "lake"


def apt_install(package: str) -> str | None:
    """Install a Debian package with apt-get; None when it was installed, else why it could not be.
    One install at a time: the test workers of `make test` may want two packages at once, and
    apt-get refuses a second run while one holds its lock."""
    if os.geteuid() != 0 or shutil.which("apt-get") is None:
        return "needs root and apt-get"
    env = {**os.environ, "DEBIAN_FRONTEND": "noninteractive"}
    with open(Path(tempfile.gettempdir()) / "trafficlens-tests-apt.lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        for cmd in (["apt-get", "update"], ["apt-get", "install", "-y", "--no-install-recommends", package]):
            try:
                done = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=900)
            except (OSError, subprocess.TimeoutExpired) as e:
                return f"{' '.join(cmd)}: {e}"
            if done.returncode != 0:
                return f"{' '.join(cmd)}: {done.stderr.strip().splitlines()[-1:]}"
    return None


def simulated_lake(folder: Path, days: int = 3, scale: float = 0.3, seed: int = 5) -> Path:
    """Simulated days plus two unreadable lines (for the data quality views), analysed with the
    simulated ranges into `folder`/lake."""
    from click.testing import CliRunner

    from trafficlens.cli import main

    log, ranges, lake = folder / "sim.log", folder / "ranges", folder / "lake"
    runner = CliRunner()
    r = runner.invoke(
        main,
        [
            "simulate",
            "--out",
            str(log),
            "--days",
            str(days),
            "--scale",
            str(scale),
            "--seed",
            str(seed),
            "--ranges-out",
            str(ranges),
            "--no-progress",
        ],
    )
    assert r.exit_code == 0, (r.output, r.exception)
    with open(log, "a") as f:
        f.write("this is not a log line\n\x00\x01 neither is this\n")
    # Two versions of the site's robots.txt (the simulated days start on 6 October 2025): from the
    # second day GPTBot is disallowed everything and training is signalled unwelcome.
    robots = folder / "robots"
    robots.mkdir(exist_ok=True)
    (robots / "robots-2025-10-06.txt").write_text("User-agent: *\nDisallow: /checkout\nContent-Signal: ai-train=yes\n")
    (robots / "robots-2025-10-07.txt").write_text(
        "User-agent: GPTBot\nDisallow: /\n\nUser-agent: *\nDisallow: /checkout\nContent-Signal: search=yes, ai-train=no\n"
    )
    r = runner.invoke(
        main,
        ["analyze", str(log), "--lake", str(lake), "--ranges", str(ranges), "--robots", str(robots), "--no-progress"],
    )
    assert r.exit_code == 0, (r.output, r.exception)
    return lake


def free_port() -> int:
    """A TCP port on 127.0.0.1 that nothing listens on now."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@contextlib.contextmanager
def dashboard_server(
    command: list[str],
    lake: Path,
    log: Path,
    *,
    cwd: Path | None = None,
    env: dict[str, str] | None = None,
    timeout: float = 90,
) -> Iterator[str]:
    """`command` (a `trafficlens` to run) serving the dashboard on `lake` on a free port, until its
    health check answers; yields the URL, then stops the server and the Streamlit process under it."""
    port = free_port()
    with open(log, "w") as out:
        proc = subprocess.Popen(
            [*command, "dashboard", "--lake", str(lake), "--port", str(port), "--host", "127.0.0.1"],
            cwd=cwd,
            env=env,
            stdout=out,
            stderr=subprocess.STDOUT,
            start_new_session=True,  # its own group: streamlit runs as a child
        )
        url = f"http://127.0.0.1:{port}/"
        try:
            deadline = time.monotonic() + timeout
            while True:
                try:
                    with urllib.request.urlopen(url + "_stcore/health", timeout=2) as resp:
                        if resp.read().strip() == b"ok":
                            break
                except OSError:
                    pass
                if proc.poll() is not None or time.monotonic() > deadline:
                    out.flush()
                    pytest.fail("the dashboard did not start:\n" + log.read_text()[-3000:])
                time.sleep(0.3)
            yield url
        finally:
            if proc.poll() is None:
                os.killpg(proc.pid, signal.SIGTERM)
                try:
                    proc.wait(timeout=15)
                except subprocess.TimeoutExpired:
                    os.killpg(proc.pid, signal.SIGKILL)
                    proc.wait()
