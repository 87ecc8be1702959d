from __future__ import annotations

import os
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
FIXTURES = Path(__file__).resolve().parent / "fixtures"
# Real data written by others, kept beside the project (never inside it); absent on a user's checkout.
EXTERNAL = Path(os.environ.get("TRAFFICLENS_EXTERNAL", ROOT.parent / "shared" / "external"))


def external(*parts: str) -> Path:
    """A path under ../shared/external, or skip the test when that data is not there."""
    p = EXTERNAL.joinpath(*parts)
    if not p.exists():
        pytest.skip(f"external evaluation data not available ({'/'.join(parts)})")
    return p


@pytest.fixture
def lake(tmp_path: Path) -> Path:
    return tmp_path / "lake"
