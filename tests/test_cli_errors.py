"""Every command, given a bad value for each of its options, fails in one line ("Error: ..."), with
a non-zero exit and no traceback; so do a few real runs of the installed command."""

from __future__ import annotations

import json
import os
import pickle
import shutil
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import click
import pytest
from click.testing import CliRunner

from trafficlens.classify.model import META_FILE, model_dir
from trafficlens.classify.pipeline import classify
from trafficlens.cli import main
from trafficlens.ingest import ingest
from trafficlens.simulate import simulate

# Text options any value of which is fine (a site name, an address to listen on).
FREE_TEXT = {"--site", "--host"}


def _commands(group: click.Group, prefix: tuple[str, ...] = ()) -> Iterator[tuple[tuple[str, ...], click.Command]]:
    for name, cmd in group.commands.items():
        if isinstance(cmd, click.Group):
            yield from _commands(cmd, (*prefix, name))
        else:
            yield (*prefix, name), cmd


class Setup:
    """A classified lake and the files the cases name."""

    def __init__(self, tmp: Path) -> None:
        self.tmp = tmp
        self.log = tmp / "sim.log"
        simulate(self.log, days=1, scale=0.02, seed=8, progress=False)
        self.truth = tmp / "sim.log.truth.parquet"
        self.lake = tmp / "lake"
        ingest([str(self.log)], self.lake, progress=False)
        classify(self.lake, progress=False)
        self.afile = tmp / "a-file"
        self.afile.write_text("not a folder\n")
        self.not_a_lake = tmp / "not-a-lake"
        self.not_a_lake.mkdir()
        (self.not_a_lake / "notes.txt").write_text("mine\n")
        self.yaml_broken = tmp / "broken.yml"
        self.yaml_broken.write_text("a: [\n")
        self.yaml_unknown = tmp / "unknown.yml"
        self.yaml_unknown.write_text("no_such_threshold: 3\n")
        self.yaml_list = tmp / "list.yml"
        self.yaml_list.write_text("- 1\n- 2\n")
        self.yaml_badvalue = tmp / "badvalue.yml"
        self.yaml_badvalue.write_text("scan_404_paths: many\n")
        self.pricing_bad = tmp / "pricing.yml"
        self.pricing_bad.write_text("purposes:\n  ai_training: {action: charge}\n")  # a charge with no price
        self.model_corrupt = tmp / "model-corrupt"
        self.model_corrupt.mkdir()
        for f in ("behaviour.skops", "navigation.skops"):
            (self.model_corrupt / f).write_bytes(b"PK\x03\x04 not really a zip")
        (self.model_corrupt / META_FILE).write_text("{")
        self.model_pickle = tmp / "model-pickle"
        self.model_pickle.mkdir()
        shutil.copy(model_dir() / META_FILE, self.model_pickle / META_FILE)
        for f in ("behaviour.joblib", "navigation.joblib"):
            (self.model_pickle / f).write_bytes(pickle.dumps({"a": 1}))

    def base(self, path: tuple[str, ...]) -> list[str]:
        """Arguments that make a run of the command valid but for the option under test."""
        lake = ["--lake", str(self.lake)]
        return {
            ("ingest",): [str(self.log), "--lake", str(self.tmp / "new-lake")],
            ("analyze",): [str(self.log), "--lake", str(self.tmp / "new-lake")],
            ("query",): ["SELECT 1", *lake],
            ("export",): ["robots", *lake],
            ("evaluate",): [*lake, "--truth", str(self.truth)],
            ("simulate",): ["--out", str(self.tmp / "out.log")],
            ("train",): [],
            ("ranges", "update"): ["--dir", str(self.tmp / "ranges")],
            ("redact",): [*lake, "--before", "2000-01-01"],
        }.get(path, lake)

    def text_values(self, path: tuple[str, ...], opt: str) -> list[str] | None:
        """Bad values of a free-text option or argument (None: not known here)."""
        writes = path in (("ingest",), ("analyze",))
        table = {
            "--lake": [str(self.not_a_lake)] if writes else [str(self.tmp / "no-lake"), str(self.afile)],
            "--format": ["no_such_format"],
            "--log-format": ["no variables here"],
            "--json-map": ["ts=$.[[[", "no_equals_sign", "no_column=$.a"],
            "--tz": ["Mars/Olympus"],
            "--time-window": ["sometime", "2030-01-01..2020-01-01"],
            "--since": ["not-a-date"],
            "--until": ["2025-13-45"],
            "--before": ["not-a-date"],
            "--section": ["no_such_section"],
            "--policy": ["block-nothing"],
            "--families": ["no_such_family"],
            "--robots": [str(self.tmp / "no-robots.txt"), str(self.tmp), f"{self.yaml_list}@2025-13-01"],
            "--keep-query-values": ["utm_*,a key with spaces"],
            # Spark's options without --engine spark (the default engine is local).
            "--master": ["local[2]"],
            "--conf": ["spark.executor.memory=4g", "no_equals_sign"],
            "paths": [str(self.tmp / "no-such.log")],
            "sql": ["SELEC nonsense", "SELECT * FROM no_such_table"],
        }
        return table.get(opt)

    def path_values(self, opt: str, ptype: click.Path) -> list[str]:
        """What click refuses for the option's kind of path, and what the command itself refuses."""
        values = [str(self.afile)] if not ptype.file_okay else [str(self.tmp)] if not ptype.dir_okay else []
        extra = {
            "--out": [str(self.afile / "x.txt")],
            "--ranges-out": [str(self.afile / "ranges")],
            "--truth": [str(self.log), str(self.tmp / "no-truth.parquet")],
            "--log": [str(self.tmp / "no-such.log")],
            "--ranges": [str(self.tmp / "no-ranges")],
            "--pages": [str(self.yaml_broken), str(self.yaml_list), str(self.tmp / "no.yml")],
            "--threats": [str(self.yaml_broken), str(self.yaml_unknown), str(self.yaml_list), str(self.yaml_badvalue)],
            "--config": [str(self.yaml_broken), str(self.yaml_unknown), str(self.yaml_list), str(self.yaml_badvalue)],
            "--pricing": [
                str(self.yaml_broken),
                str(self.yaml_unknown),
                str(self.yaml_list),
                str(self.pricing_bad),
                str(self.tmp / "no-pricing.yml"),
            ],
            "--model-dir": [str(self.model_corrupt), str(self.model_pickle), str(self.tmp / "no-model")],
        }
        return values + extra.get(opt, [])


def _bad_values(setup: Setup, path: tuple[str, ...], param: click.Parameter) -> list[str] | None:
    t = param.type
    name = param.opts[0]
    if isinstance(param, click.Option) and param.is_flag:
        return []
    if isinstance(t, click.Choice):
        return ["no-such-choice"]
    if isinstance(t, (click.IntRange, click.FloatRange)):
        return ["abc", "-5"]
    if isinstance(t, (click.types.IntParamType, click.types.FloatParamType)):
        return ["abc"]
    if isinstance(t, click.Path):
        return setup.path_values(name, t)
    if name in FREE_TEXT:
        return []
    return setup.text_values(path, name)


def _with(base: list[str], param: click.Parameter, value: str) -> list[str]:
    """`base` with the option (or argument) set to `value`."""
    if not isinstance(param, click.Option):
        return [value, *base[1:]] if base and not base[0].startswith("-") else [value, *base]
    opt = param.opts[0]
    if opt in base and not param.multiple:
        i = base.index(opt)
        return [*base[:i], opt, value, *base[i + 2 :]]
    return [*base, opt, value]


@pytest.fixture(scope="module")
def setup(tmp_path_factory: pytest.TempPathFactory) -> Setup:
    return Setup(tmp_path_factory.mktemp("cli-errors"))


@pytest.fixture(autouse=True)
def nothing_long_runs(monkeypatch: pytest.MonkeyPatch) -> None:
    """A bad value must stop a command before its work: training, the dashboard and downloads
    fail the test if they start."""

    def started(*a: object, **k: object) -> None:
        raise AssertionError("the command ran although an option was bad")

    import trafficlens.classify.training as training
    import trafficlens.classify.verify as verify

    monkeypatch.setattr(training, "train", started)
    monkeypatch.setattr(verify, "update_ranges", started)
    monkeypatch.setattr(subprocess, "call", started)


def _assert_one_line(result: click.testing.Result, args: list[str]) -> None:
    shown = " ".join(args)
    assert result.exit_code not in (0, None), f"{shown}: exit 0\n{result.output}"
    assert "Traceback" not in result.output, f"{shown}:\n{result.output}"
    assert result.stdout == "", f"{shown}: printed on stdout:\n{result.stdout}"
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("Error: "), f"{shown}:\n{result.stderr}"


def test_every_option_of_every_command_fails_in_one_line(setup: Setup) -> None:
    runner = CliRunner()
    undecided, cases = [], 0
    for path, cmd in _commands(main):
        base = setup.base(path)
        required = [p.opts[0] for p in cmd.params if p.required and isinstance(p, click.Option)]
        assert all(r in base for r in required), f"{' '.join(path)}: give its required options in Setup.base"
        for param in cmd.params:
            values = _bad_values(setup, path, param)
            if values is None:
                undecided.append(f"{' '.join(path)} {param.opts[0]}")
                continue
            for value in values:
                args = [*path, *_with(base, param, value)]
                # A bare exception (a traceback) fails the test here rather than being caught.
                _assert_one_line(runner.invoke(main, args, catch_exceptions=False), args)
                cases += 1
    assert not undecided, f"give bad values (Setup.text_values) or list as free text: {undecided}"
    assert cases > 60


def test_unknown_commands_and_options_and_missing_values_are_one_line(setup: Setup) -> None:
    runner = CliRunner()
    for args in (
        ["no-such-command"],
        ["report", "--no-such-option"],
        ["report", "--lake"],
        ["ranges", "no-such"],
        ["simulate"],
        ["evaluate", "--lake", str(setup.lake)],
    ):
        _assert_one_line(runner.invoke(main, args, catch_exceptions=False), args)
    # Help is still shown in full, and a bare group still shows its help.
    assert "Usage:" in runner.invoke(main, ["report", "--help"]).output
    assert "Commands:" in runner.invoke(main, []).output


def test_classify_on_a_read_only_lake_is_one_line(setup: Setup, monkeypatch: pytest.MonkeyPatch) -> None:
    import errno

    real_open = os.open

    def read_only(path: object, flags: int, *a: object) -> int:
        if str(path).endswith(".lock"):
            raise OSError(errno.EROFS, "Read-only file system", str(path))
        return real_open(path, flags, *a)  # type: ignore[arg-type]

    monkeypatch.setattr(os, "open", read_only)
    args = ["classify", "--lake", str(setup.lake)]
    result = CliRunner().invoke(main, args, catch_exceptions=False)
    _assert_one_line(result, args)
    assert "Read-only file system" in result.stderr and str(setup.lake) in result.stderr


def _cli(*args: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "COLUMNS": "200"}
    return subprocess.run(
        [sys.executable, "-m", "trafficlens", *args], capture_output=True, text=True, cwd=cwd, env=env, timeout=120
    )


def test_real_runs_print_one_line(setup: Setup) -> None:
    lake = str(setup.lake)
    for args in (
        ("report", "--lake", lake, "--out", str(setup.afile / "r.txt")),
        ("report", "--lake", lake, "--top", "-5"),
        ("classify", "--lake", lake, "--threats", str(setup.yaml_broken)),
    ):
        r = _cli(*args, cwd=setup.tmp)
        assert r.returncode != 0 and r.stdout == "", (args, r.stdout, r.stderr)
        assert len(r.stderr.strip().splitlines()) == 1 and r.stderr.startswith("Error: "), (args, r.stderr)


def test_read_only_file_system_is_one_line(setup: Setup, tmp_path: Path) -> None:
    """A lake on a file system mounted read-only: writing commands fail in one line, reading ones work."""
    if os.geteuid() != 0 or shutil.which("mount") is None:
        pytest.skip("mounting a file system needs root")
    mnt = tmp_path / "mnt"
    mnt.mkdir()
    if subprocess.run(["mount", "-t", "tmpfs", "-o", "size=16m", "tmpfs", str(mnt)], capture_output=True).returncode:
        pytest.skip("cannot mount a tmpfs here")
    try:
        shutil.copytree(setup.lake, mnt / "lake")
        subprocess.run(["mount", "-o", "remount,ro", str(mnt)], check=True)
        lake = str(mnt / "lake")
        for args in (["ingest", str(setup.log), "--lake", lake], ["classify", "--lake", lake]):
            r = CliRunner().invoke(main, args, catch_exceptions=False)
            _assert_one_line(r, args)
            assert "Read-only file system" in r.stderr
        r = CliRunner().invoke(
            main, ["query", "--lake", lake, "--format", "json", "SELECT count(*) AS n FROM requests"]
        )
        assert r.exit_code == 0 and json.loads(r.stdout)["n"] > 0
    finally:
        subprocess.run(["umount", "-l", str(mnt)], check=False)
