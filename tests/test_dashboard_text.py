"""Log text in the dashboard is shown as text: an address, a user agent, a path, a referer or a
host holding Markdown or HTML (an image, a link, a tag, backticks that close a code span) renders
as the characters it is made of on every page. And the dashboard listens on 127.0.0.1 only,
sending no usage statistics, however it is started."""

from __future__ import annotations

import os
import re
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest
from click.testing import CliRunner
from conftest import ROOT
from markdown_it import MarkdownIt
from streamlit.testing.v1 import AppTest

from trafficlens.cli import main
from trafficlens.dashboards.common import md

DASHBOARDS = ROOT / "dashboards"
PAGES = [DASHBOARDS / "app.py", *sorted(p for p in (DASHBOARDS / "views").glob("*.py") if p.stem != "__init__")]
# Each breaks out of a code span (a backtick) before its image, link, tag or directive.
EVIL_IP = "1.2.3.4`![x](http://attacker/ip.png)`"
EVIL_UA = (
    "x`![x](http://attacker/ua.png)` <img src=http://attacker/ua2.png> [l](http://attacker/l) "
    ":red[big] $x$ www.attacker.example <b>bold</b>"
)
EVIL_PATH = "/p![x](http://attacker/path.png)"
EVIL_REFERER = "http://shop.example/`![x](http://attacker/ref.png)`<img src=http://attacker/ref2.png>"
EVIL_SITE = "shop![x](http://attacker/site.png)"
CHROME = "Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/129.0.0.0 Safari/537.36"
RENDER = MarkdownIt("commonmark", {"html": False})


def _line(ip: str, second: int, path: str, ua: str, referer: str = "-", host: str | None = None) -> str:
    head = f"{host} " if host else ""
    t = f"06/Oct/2025:10:{second // 60:02d}:{second % 60:02d} +0000"
    return f'{head}{ip} - - [{t}] "GET {path} HTTP/1.1" 200 512 "{referer}" "{ua}"\n'


@pytest.fixture(scope="module")
def evil_lake(tmp_path_factory: pytest.TempPathFactory) -> Path:
    folder = tmp_path_factory.mktemp("evil")
    log = folder / "access.log"
    lines = [_line(EVIL_IP, s, EVIL_PATH, EVIL_UA, EVIL_REFERER) for s in range(0, 600, 20)]
    lines += [_line(f"198.18.0.{i}", 5 + 7 * i, "/", CHROME) for i in range(1, 30)]
    log.write_text("".join(lines))
    vhost = folder / "vhost.log"
    vhost.write_text("".join(_line(f"198.18.1.{i}", 3 * i, "/", CHROME, host=EVIL_SITE) for i in range(1, 20)))
    lake = folder / "lake"
    r = CliRunner().invoke(main, ["analyze", str(log), str(vhost), "--lake", str(lake), "--no-progress"])
    assert r.exit_code == 0, (r.output, r.exception)
    return lake


def _outside_code(text: str) -> str:
    """Markdown source less its code spans (a run of n backticks up to the next run of exactly n)."""
    out, i = [], 0
    runs = list(re.finditer(r"`+", text))
    k = 0
    while k < len(runs):
        opening = runs[k]
        close = next((j for j in range(k + 1, len(runs)) if len(runs[j].group()) == len(opening.group())), None)
        if close is None:
            k += 1
            continue
        out.append(text[i : opening.start()])
        i, k = runs[close].end(), close + 1
    return "".join(out) + text[i:]


def _unsafe(markdown: str) -> list[str]:
    """What a Markdown text would render from the log values: images, links, tags, autolinks."""
    html = RENDER.render(markdown)
    found = [tag for tag in ("<img", "<a ", "<b>") if tag in html]
    rest = _outside_code(markdown)
    found += [s for s in ("![", "](http", "http://attacker", "www.attacker", ":red[", "$x$") if s in rest]
    return found


def _markdown_of(at: AppTest) -> list[str]:
    """The Markdown of every element that renders its text as Markdown."""
    texts: list[str] = []
    for kind in ("markdown", "caption", "info", "warning", "error", "success", "title", "header", "subheader"):
        texts += [str(e.value) for e in getattr(at, kind)]
    for m in at.metric:
        texts += [str(m.label), str(m.value), str(m.help or "")]
    return texts


def _run(script: Path, lake: Path, monkeypatch: pytest.MonkeyPatch) -> AppTest:
    monkeypatch.setenv("TRAFFICLENS_LAKE", str(lake))
    at = AppTest.from_file(str(script), default_timeout=120)
    at.run()
    assert not at.exception, [e.value for e in at.exception]
    return at


def test_md_escapes_what_markdown_reads() -> None:
    assert _unsafe(md(EVIL_UA)) == [] and _unsafe(md(EVIL_IP, code=True)) == []
    assert md("20.171.206.5") == "20.171.206.5" and md("GPTBot") == "GPTBot"
    assert md("``a`b``", code=True) == "``` ``a`b`` ```"
    assert md("a\n\n# b") == "a \\# b" and md(None) == "–"
    assert _unsafe(f"`{EVIL_IP}`"), "the check finds what the escaping prevents"


@pytest.mark.parametrize("script", PAGES, ids=lambda p: p.stem)
def test_every_page_shows_log_values_as_text(script: Path, evil_lake: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    at = _run(script, evil_lake, monkeypatch)
    texts = _markdown_of(at)
    assert texts, "the page shows something"
    problems = {t: _unsafe(t) for t in texts if _unsafe(t)}
    assert not problems, problems


def test_client_details_show_log_values_as_text(evil_lake: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    at = _run(DASHBOARDS / "views" / "client_explorer.py", evil_lake, monkeypatch)
    at.text_input(key="tl_q_ua").input("attacker")
    at.button[0].click().run()
    texts = _markdown_of(at)
    assert any("1.2.3.4" in t for t in texts) and any("attacker/ua.png" in t for t in texts), texts
    problems = {t: _unsafe(t) for t in texts if _unsafe(t)}
    assert not problems, problems
    # the site, a host from the log, in the period line of the other pages
    at = _run(DASHBOARDS / "views" / "overview.py", evil_lake, monkeypatch)
    assert any("shop" in c.value and "attacker/site.png" in c.value for c in at.caption)


def _listening(port: int) -> list[str]:
    """Local addresses (hex, as /proc/net/tcp* writes them) with a socket listening on `port`."""
    found = []
    for table in ("/proc/net/tcp", "/proc/net/tcp6"):
        with open(table) as f:
            for row in f.read().splitlines()[1:]:
                local, state = row.split()[1], row.split()[3]
                if state == "0A" and int(local.rsplit(":", 1)[1], 16) == port:
                    found.append(local.rsplit(":", 1)[0])
    return found


@pytest.mark.skipif(not Path("/proc/net/tcp").exists(), reason="reads the listening sockets from /proc")
def test_streamlit_run_listens_on_loopback_and_sends_no_statistics(tmp_path: Path) -> None:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    # The run line of app.py, from the repository's root, with no user configuration of its own.
    env = {**os.environ, "HOME": str(tmp_path), "TRAFFICLENS_LAKE": str(tmp_path / "none")}
    env = {k: v for k, v in env.items() if not k.startswith("STREAMLIT_")}
    cmd = [sys.executable, "-m", "streamlit", "run", "dashboards/app.py", "--server.port", str(port)]
    cmd += ["--server.headless", "true"]
    proc = subprocess.Popen(cmd, cwd=ROOT, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    try:
        deadline = time.monotonic() + 60
        while not _listening(port) and time.monotonic() < deadline and proc.poll() is None:
            time.sleep(0.2)
        assert _listening(port) == ["0100007F"], _listening(port)  # 127.0.0.1, and nothing else
    finally:
        proc.terminate()
        output = proc.communicate(timeout=30)[0]
    assert "Collecting usage statistics" not in output, output
    check = (
        "import streamlit.config as c; c._main_script_path = 'dashboards/app.py'; "
        "c.get_config_options(force_reparse=True); "
        "print(c.get_option('server.address'), c.get_option('browser.gatherUsageStats'))"
    )
    done = subprocess.run([sys.executable, "-c", check], cwd=ROOT, env=env, capture_output=True, text=True)
    assert done.stdout.split() == ["127.0.0.1", "False"], done.stderr
