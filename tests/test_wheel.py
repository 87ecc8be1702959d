"""The wheel: a plain (not editable) install in a fresh venv carries every package and the
dashboard, and `trafficlens dashboard` run from another folder serves every page.

The wheel is built from a copy of the sources (a build writes build/ and *.egg-info beside them);
the fresh venv sees the running environment's packages through a .pth file, so nothing is
downloaded to install it.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import sysconfig
import textwrap
import urllib.request
import zipfile
from importlib import metadata
from pathlib import Path

from conftest import ROOT, dashboard_server, simulated_lake

from dashboards.app import ROUTES

PAGE_CHECK = """
import sys
from pathlib import Path

from streamlit.testing.v1 import AppTest

import trafficlens.dashboards

root = Path(trafficlens.dashboards.__file__).resolve().parent
assert not root.is_relative_to(sys.argv[1]), f"the dashboard comes from the source tree: {root}"
from trafficlens.dashboards.app import ROUTES

pages = sorted(p for p in (root / "views").glob("*.py") if p.stem != "__init__")
assert [p.name for p in pages] == sorted(r.file for r in ROUTES), pages
for script in pages:
    at = AppTest.from_file(str(script), default_timeout=120)
    at.run()
    problems = [e.value for e in at.exception] + [e.value for e in at.error]
    assert not problems and at.title, (script.name, problems)
at = AppTest.from_file(str(root / "app.py"), default_timeout=120)
at.run()
for script in pages:
    at.switch_page(f"views/{script.name}").run()
    problems = [e.value for e in at.exception] + [e.value for e in at.error]
    assert not problems, (script.name, problems)
print("pages ok:", len(pages))
"""


def _setuptools_builds_here() -> bool:
    """Whether this environment's setuptools reads the project's metadata (a license string needs 77+)."""
    try:
        major = int(metadata.version("setuptools").split(".")[0])
    except (metadata.PackageNotFoundError, ValueError):
        return False
    return major >= 77


def _run(cmd: list[str], **kw: object) -> subprocess.CompletedProcess[str]:
    done = subprocess.run(cmd, capture_output=True, text=True, timeout=300, **kw)  # type: ignore[call-overload]
    assert done.returncode == 0, f"{' '.join(map(str, cmd))}:\n{done.stdout[-2000:]}\n{done.stderr[-3000:]}"
    return done


def _wheel(tmp: Path) -> Path:
    src = tmp / "src"
    ignore = shutil.ignore_patterns("__pycache__", "*.pyc")
    for folder in ("trafficlens", "dashboards"):
        shutil.copytree(ROOT / folder, src / folder, ignore=ignore)
    for name in ("pyproject.toml", "README.md"):
        shutil.copy2(ROOT / name, src / name)
    isolation = ["--no-build-isolation"] if _setuptools_builds_here() else []
    _run([sys.executable, "-m", "pip", "wheel", "--no-deps", *isolation, "-w", str(tmp / "dist"), str(src)])
    (wheel,) = (tmp / "dist").glob("trafficlens-*.whl")
    return wheel


def test_wheel_carries_every_package() -> None:
    """Every package folder of the source is in pyproject's package list (a mapped folder, the
    dashboard, keeps setuptools from finding them itself)."""
    import tomllib

    listed = set(tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["setuptools"]["packages"])
    found = {".".join(p.parent.relative_to(ROOT).parts) for p in (ROOT / "trafficlens").rglob("__init__.py")}
    found |= {
        "trafficlens." + ".".join(p.parent.relative_to(ROOT).parts) for p in (ROOT / "dashboards").rglob("__init__.py")
    }
    assert found == listed


def test_installed_wheel_serves_the_dashboard(tmp_path: Path) -> None:
    wheel = _wheel(tmp_path)
    names = set(zipfile.ZipFile(wheel).namelist())
    assert {
        "trafficlens/dashboards/app.py",
        "trafficlens/dashboards/common.py",
        "trafficlens/dashboards/views/overview.py",
        "trafficlens/report/__init__.py",
    } <= names

    venv = tmp_path / "venv"
    _run([sys.executable, "-m", "venv", "--without-pip", str(venv)])
    python = venv / "bin" / "python"
    site = Path(_run([str(python), "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"]).stdout.strip())
    (site / "running-env.pth").write_text(sysconfig.get_paths()["purelib"] + "\n")
    _run([sys.executable, "-m", "pip", "--python", str(python), "install", "--no-deps", "--no-index", str(wheel)])

    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    env = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"}
    lake = simulated_lake(tmp_path, days=2, scale=0.1)
    env["TRAFFICLENS_LAKE"] = str(lake)
    where = _run([str(python), "-c", "import trafficlens.report as r; print(r.__file__)"], cwd=elsewhere, env=env)
    assert Path(where.stdout.strip()).is_relative_to(venv)

    command = [str(venv / "bin" / "trafficlens")]
    with dashboard_server(command, lake, tmp_path / "dashboard.log", cwd=elsewhere, env=env, timeout=60) as url:
        with urllib.request.urlopen(url, timeout=10) as resp:
            assert resp.status == 200

    # Every page, alone and through the router, from the installed files.
    done = _run([str(python), "-c", textwrap.dedent(PAGE_CHECK), str(ROOT)], cwd=elsewhere, env=env)
    assert f"pages ok: {len(ROUTES)}" in done.stdout
