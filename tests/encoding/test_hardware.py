"""The hardware registry: explicit unknowns, clear errors."""

import numpy as np
import pytest
import yaml

from ofa_latency_kedro.encoding import HardwareRegistry
from tests.conftest import PROJECT_ROOT


def test_the_project_registry_has_the_seed_devices():
    registry = HardwareRegistry(
        yaml.safe_load((PROJECT_ROOT / "conf/base/hardware.yml").read_text())["hardware"]
    )
    assert registry.seed_features(["RTX_2080_Ti_GPU", "Tesla_P40_GPU"]).tolist() == [
        [4352, 11, 616],
        [3840, 24, 347],
    ]
    assert registry.width_mult("note10_lookuptable") == 1.2
    assert registry.get("Intel_Xeon_CPU")["cores"] is None


def test_unknown_values_are_refused_not_read_as_zero():
    registry = HardwareRegistry({"cpu": {"kind": "cpu", "memory_gb": 16}})
    with pytest.raises(ValueError, match="'cpu' .* has no cuda_cores, bandwidth_gb_s"):
        registry.seed_features(["cpu"])
    with pytest.raises(KeyError, match="unknown hardware 'gpu'"):
        registry.get("gpu")
    assert registry.seed_features([]).shape == (0, 3)
    assert isinstance(registry.seed_features([]), np.ndarray)


@pytest.mark.parametrize(
    ("entries", "fragment"),
    [
        ({"x": {"kind": "tpu"}}, "kind 'tpu'"),
        ({"x": {"cuda": 1}}, "unknown field(s) cuda"),
        ({"x": 3}, "must be a mapping"),
    ],
)
def test_bad_entries_are_named(entries, fragment):
    with pytest.raises(ValueError) as info:
        HardwareRegistry(entries)
    assert fragment in str(info.value)
