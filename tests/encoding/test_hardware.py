"""The hardware registry: explicit unknowns, clear errors."""

import numpy as np
import pytest
import yaml

from ofa_latency_kedro.encoding import HardwareRegistry
from ofa_latency_kedro.errors import ParameterError
from tests.helpers import PROJECT_ROOT


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
    with pytest.raises(ParameterError, match="'hardware.cpu' has no cuda_cores, bandwidth_gb_s"):
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
    with pytest.raises(ParameterError) as info:
        HardwareRegistry(entries)
    assert info.value.parameter == "hardware.x"
    assert fragment in str(info.value)
    assert "params:hardware (hardware.yml)" in str(info.value)


def test_sampling_sidecars_add_devices_and_fill_unknowns_without_overriding():
    registry = HardwareRegistry(
        {"AMD_EPYC_CPU": {"kind": "cpu", "memory_gb": 64, "cores": None}}, source="test"
    )
    sidecars = {
        "AMD_EPYC_CPU_ofa": {
            "hardware": "AMD_EPYC_CPU",
            "backend": "torch-cpu",
            "width_mult": 1.0,
            "protocol": {"batch_size": 1},
            "descriptor": {
                "kind": "cpu",
                "cpu_model": "AMD EPYC",
                "physical_cores": 2,
                "memory_gb": 23.5,
                "gpu": None,
            },
        },
        "A100_ofa": {
            "hardware": "A100",
            "backend": "torch-cuda-graph",
            "protocol": {"batch_size": 64},
            "descriptor": {
                "kind": "gpu",
                "gpu": {
                    "name": "NVIDIA A100",
                    "sms": 108,
                    "memory_gb": 40.0,
                    "bandwidth_gb_s": None,
                },
            },
        },
        "note10_ofa": {"hardware": "note10", "backend": "lut", "width_mult": 1.2},
        "broken": None,
    }
    merged = registry.with_sidecars(sidecars)
    cpu = merged.get("AMD_EPYC_CPU")
    assert cpu["memory_gb"] == 64 and cpu["cores"] == 2 and cpu["backend"] == "torch-cpu"
    gpu = merged.get("A100")
    assert gpu["kind"] == "gpu" and gpu["sms"] == 108 and gpu["batch_size"] == 64
    assert gpu["bandwidth_gb_s"] is None and gpu["cuda_cores"] is None
    assert merged.get("note10")["kind"] == "lut" and merged.width_mult("note10") == 1.2
    assert "AMD_EPYC_CPU" in registry and "A100" not in registry  # the original is unchanged
