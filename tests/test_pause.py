"""The pause points that kill tests arm (`ofa_latency_kedro.pause`): a process stops at the
n-th point matching the pattern, says so in the marker file and waits there to be killed."""

from __future__ import annotations

import sys
from pathlib import Path

from tests.helpers import PausedProcess

COUNTER = """
import sys
from ofa_latency_kedro import pause
for step in range(1, 4):
    for name in ("a.csv", "b.json"):
        print(f"at {step} {name}", flush=True)
        pause.reached(f"demo.step:{name}")
"""


def test_the_process_stops_at_the_nth_matching_point_and_waits_to_be_killed(tmp_path: Path):
    process = PausedProcess([sys.executable, "-c", COUNTER], "demo.step:*.json@2", tmp_path / "m")
    try:
        assert process.wait_for_pause() == "demo.step:b.json"
        assert process.process.poll() is None  # waiting there
    finally:
        process.kill()
    assert process.output().split("\n")[:4] == [
        "at 1 a.csv",
        "at 1 b.json",
        "at 2 a.csv",
        "at 2 b.json",
    ]
    assert "at 3" not in process.output()
