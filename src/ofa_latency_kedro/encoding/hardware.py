"""The hardware registry (the parameter ``hardware``, read from ``hardware.yml``): what is
known about each device a dataset comes from. Unknown values are None and stay None: a
feature that needs one says so instead of reading it as 0. A bad entry is a `ParameterError`
naming ``hardware.<name>``."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np

from ofa_latency_kedro.encoding.encoders import SEED_HARDWARE_FEATURES
from ofa_latency_kedro.errors import ParameterError

#: The numbers a registry entry may give (None when unknown).
NUMERIC_FIELDS = (
    "cuda_cores",
    "sms",
    "cores",
    "memory_gb",
    "bandwidth_gb_s",
    "peak_tflops",
    "batch_size",
)
HARDWARE_FIELDS = ("kind", "description", *NUMERIC_FIELDS, "backend", "width_mult")
KINDS = ("cpu", "gpu", "mobile", "lut")
#: What a registry built from the project's parameters says it comes from.
PARAMETER_SOURCE = "params:hardware (hardware.yml)"


class HardwareRegistry:
    """Device descriptors by hardware name."""

    def __init__(
        self,
        entries: Mapping[str, Mapping[str, Any]] | None = None,
        source: str = PARAMETER_SOURCE,
    ) -> None:
        self.source = source
        self.entries: dict[str, dict[str, Any]] = {}
        for name, entry in (entries or {}).items():
            if not isinstance(entry, Mapping):
                raise ParameterError(
                    f"hardware.{name}", f"must be a mapping of fields, got {entry!r} ({source})"
                )
            unknown = sorted(set(entry) - set(HARDWARE_FIELDS))
            if unknown:
                raise ParameterError(
                    f"hardware.{name}",
                    f"has unknown field(s) {', '.join(unknown)}; known: "
                    f"{', '.join(HARDWARE_FIELDS)} ({source})",
                )
            kind = entry.get("kind")
            if kind is not None and kind not in KINDS:
                raise ParameterError(
                    f"hardware.{name}",
                    f"has kind {kind!r}; use one of {', '.join(KINDS)} ({source})",
                )
            self.entries[str(name)] = {field: entry.get(field) for field in HARDWARE_FIELDS}

    def __contains__(self, name: object) -> bool:
        return name in self.entries

    def get(self, name: str) -> dict[str, Any]:
        if name not in self.entries:
            raise KeyError(
                f"unknown hardware {name!r} in {self.source}; known: {', '.join(sorted(self.entries)) or 'none'}"
            )
        return self.entries[name]

    def with_sidecars(self, sidecars: Mapping[str, Mapping[str, Any] | None]) -> HardwareRegistry:
        """This registry plus an entry for every device a sampling sidecar describes (by its
        ``hardware`` name). Fields the registry gives win; the sidecar fills what it knows,
        and what neither knows stays None."""
        entries = {name: dict(entry) for name, entry in self.entries.items()}
        for sidecar in sidecars.values():
            if not sidecar or not sidecar.get("hardware"):
                continue
            derived = descriptor_entry(sidecar)
            current = entries.setdefault(str(sidecar["hardware"]), {})
            for field, value in derived.items():
                if current.get(field) is None:
                    current[field] = value
        return HardwareRegistry(entries, source=f"{self.source} + sampling sidecars")

    def width_mult(self, name: str) -> float | None:
        return self.entries.get(name, {}).get("width_mult")

    def seed_features(self, names: Sequence[str]) -> np.ndarray:
        """(n, 3) CUDA cores, memory GB and bandwidth GB/s of each row's device (seed131)."""
        table = {}
        for name in dict.fromkeys(names):
            entry = self.get(name)
            missing = [f for f in SEED_HARDWARE_FEATURES if entry.get(f) is None]
            if missing:
                raise ParameterError(
                    f"hardware.{name}",
                    f"has no {', '.join(missing)} in {self.source}: the seed's hardware "
                    "features need all of cuda_cores, memory_gb and bandwidth_gb_s",
                )
            table[name] = [float(entry[f]) for f in SEED_HARDWARE_FEATURES]
        return np.array([table[name] for name in names], dtype=np.float32).reshape(len(names), 3)


def descriptor_entry(sidecar: Mapping[str, Any]) -> dict[str, Any]:
    """A registry entry from a sampling sidecar: its backend, batch size and width, and the
    hardware descriptor it stored (the GPU's when one was measured, else the CPU's)."""
    descriptor = sidecar.get("descriptor") or {}
    protocol = sidecar.get("protocol") or {}
    gpu = descriptor.get("gpu") or None
    backend = sidecar.get("backend")
    entry: dict[str, Any] = {
        "kind": "lut" if backend == "lut" else ("gpu" if gpu else descriptor.get("kind")),
        "backend": backend,
        "batch_size": protocol.get("batch_size"),
        "width_mult": sidecar.get("width_mult"),
    }
    if gpu:
        entry.update(
            description=gpu.get("name"),
            sms=gpu.get("sms"),
            memory_gb=gpu.get("memory_gb"),
            bandwidth_gb_s=gpu.get("bandwidth_gb_s"),
        )
    elif backend != "lut":
        entry.update(
            description=descriptor.get("cpu_model"),
            cores=descriptor.get("physical_cores"),
            memory_gb=descriptor.get("memory_gb"),
        )
    if entry["kind"] not in KINDS:
        entry["kind"] = None
    return entry
