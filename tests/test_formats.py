"""Each log fixture under tests/fixtures/logs/ is ingested and compared with its expected.json."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from pathlib import Path

import pytest

from trafficlens.ingest import IngestOptions, ingest
from trafficlens.store import Lake

LOGS = Path(__file__).resolve().parent / "fixtures" / "logs"
CASES = sorted(p for p in LOGS.glob("*.expected.json")) if LOGS.is_dir() else []
COMPARED = (
    "client_ip",
    "method",
    "path",
    "query",
    "protocol",
    "status",
    "bytes",
    "referer",
    "user_agent",
    "host",
    "remote_user",
    "request_time",
    "forwarded_for",
)


def _input_for(expected: Path) -> Path:
    stem = expected.name[: -len(".expected.json")]
    return expected.with_name(stem)


@pytest.mark.parametrize("expected_path", CASES, ids=[p.name[: -len(".expected.json")] for p in CASES])
def test_fixture(expected_path: Path, tmp_path: Path) -> None:
    expected = json.loads(expected_path.read_text())
    log = _input_for(expected_path)
    assert log.exists(), f"{log.name} missing beside {expected_path.name}"
    o = expected.get("options") or {}
    opts = IngestOptions(
        format=o.get("format"),
        log_format=o.get("log_format"),
        site=o.get("site"),
        tz=o.get("tz"),
        json_map=o.get("json_map"),
    )
    summary = ingest([str(log)], tmp_path / "lake", opts)
    lake = Lake(tmp_path / "lake")
    events = lake.scan("events").collect().sort("line_no")
    rejects = lake.scan("rejects").collect().sort("line_no")
    assert sorted(rejects["line_no"].to_list()) == sorted(r["line_no"] for r in expected.get("rejects", []))
    want = expected["events"]
    assert events["line_no"].to_list() == [e["line_no"] for e in want]
    if expected.get("format"):
        assert summary.results[0].format in (expected["format"], expected["format"].replace("common", "combined"))
    for got, exp in zip(events.iter_rows(named=True), want):
        ts = datetime.fromisoformat(exp["ts"].replace("Z", "+00:00")).astimezone(UTC)
        assert got["ts"] == ts, f"line {exp['line_no']}: ts"
        for col in COMPARED:
            if col not in exp:
                continue
            if col == "request_time" and exp[col] is not None and got[col] is not None:
                assert got[col] == pytest.approx(exp[col], rel=1e-6), f"line {exp['line_no']}: {col}"
            else:
                assert got[col] == exp[col], f"line {exp['line_no']}: {col}"
