"""Commands beyond ingest: each documented, and failing in one line."""

from __future__ import annotations

import urllib.error
from pathlib import Path

import click
import pytest
from click.testing import CliRunner

from trafficlens.classify.verify import download
from trafficlens.cli import main


def _commands(group: click.Group, prefix: str = "") -> list[tuple[str, click.Command]]:
    out = []
    for name, cmd in group.commands.items():
        out.append((prefix + name, cmd))
        if isinstance(cmd, click.Group):
            out += _commands(cmd, prefix + name + " ")
    return out


@pytest.mark.parametrize("name, cmd", _commands(main), ids=[n for n, _ in _commands(main)])
def test_every_command_has_help_with_an_example(name: str, cmd: click.Command) -> None:
    assert cmd.help, f"{name} has no help"
    if not isinstance(cmd, click.Group):
        assert "Example" in cmd.help, f"{name} --help shows no example"


def test_ranges_update_offline_is_one_line_and_changes_nothing(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    def offline(url: str, timeout: float) -> bytes:
        raise urllib.error.URLError("Name or service not known")

    monkeypatch.setattr(download, "_http_get", offline)
    dest = tmp_path / "ranges"
    result = CliRunner().invoke(main, ["ranges", "update", "--dir", str(dest)])
    assert result.exit_code == 1
    assert len(result.output.strip().splitlines()) == 1 and "nothing was changed" in result.output
    assert not dest.exists()
