"""Shared test set-up: environment, hypothesis profiles, and the ../shared data folder."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
from hypothesis import HealthCheck, settings

os.environ.setdefault("KEDRO_DISABLE_TELEMETRY", "true")

PROJECT_ROOT = Path(__file__).resolve().parents[1]

settings.register_profile(
    "ci", max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow]
)
settings.register_profile(
    "long", max_examples=2000, deadline=None, suppress_health_check=[HealthCheck.too_slow]
)
settings.load_profile(os.environ.get("HYPOTHESIS_PROFILE", "ci"))


@pytest.fixture(scope="session")
def shared_dir() -> Path:
    """The read-only ``shared`` folder beside the checkout (``OFA_SHARED_DIR`` overrides)."""
    path = Path(os.environ.get("OFA_SHARED_DIR", PROJECT_ROOT.parent / "shared")).resolve()
    if not (path / "reference").is_dir() or not (path / "seed_data").is_dir():
        pytest.fail(
            f"the shared data folder was not found at {path}: the tests read the seed data and "
            "reference subnets from ../shared beside the checkout (or set OFA_SHARED_DIR)"
        )
    return path


@pytest.fixture(scope="session")
def reference_subnets(shared_dir: Path) -> list[dict]:
    import json

    return json.loads((shared_dir / "reference" / "ofa_mbv3_subnets.json").read_text())["subnets"]
