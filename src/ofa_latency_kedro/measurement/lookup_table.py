"""OFA's latency lookup tables (``<resolution>_lookup_table.yaml``, e.g. the Note10 tables).

A subnet's latency is the sum of its layers' entries, added in OFA's order (first conv, first
block, active blocks, final expand, pooling, feature mix, classifier), which reproduces OFA's
``LatencyEstimator.predict_network_latency_given_spec`` to the last bit.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

from ofa_latency_kedro.errors import OfaLatencyError
from ofa_latency_kedro.search_space import Arch, block_specs
from ofa_latency_kedro.search_space.constants import NUM_CLASSES, WIDTH_CHOICES
from ofa_latency_kedro.search_space.network import SupernetWidths, conv_output_size

_TABLE_NAME = re.compile(r"^(\d+)_lookup_table\.ya?ml$")
_SafeLoader = getattr(yaml, "CSafeLoader", yaml.SafeLoader)


class LookupTableError(OfaLatencyError, ValueError):
    """A lookup table that is missing, malformed, or lacks an entry a subnet needs."""


@dataclass(frozen=True)
class LayerEntry:
    mean_ms: float
    count: int


def _shape(values: tuple[int, ...] | list[int]) -> str:
    return "x".join(str(v) for v in values)


def layer_keys(arch: Arch) -> list[str]:
    """The lookup-table keys of every layer the subnet runs, in OFA's order."""
    widths = SupernetWidths.for_width(arch.width_mult)
    r = arch.r
    size = conv_output_size(r, 2)
    keys = [f"Conv-input:{_shape((r, r, 3))}-output:{_shape((size, size, widths.first_conv))}"]
    specs = block_specs(arch)
    for spec in specs:
        keys.append(
            "expanded_conv"
            f"-input:{_shape((spec.input_size, spec.input_size, spec.in_channels))}"
            f"-output:{_shape((spec.output_size, spec.output_size, spec.out_channels))}"
            f"-expand:{spec.mid_channels}-kernel:{spec.kernel_size}-stride:{spec.stride}"
            f"-idskip:{int(spec.has_shortcut)}-se:{int(spec.use_se)}"
            f"-hs:{int(spec.act_func == 'h_swish')}"
        )
    last = specs[-1]
    size, channels = last.output_size, last.out_channels
    final, mix = widths.final_expand, widths.feature_mix
    keys += [
        f"Conv_1-input:{_shape((size, size, channels))}-output:{_shape((size, size, final))}",
        f"AvgPool2D-input:{_shape((size, size, final))}-output:{_shape((1, 1, final))}",
        f"Conv_2-input:{_shape((1, 1, final))}-output:{_shape((1, 1, mix))}",
        f"Logits-input:{_shape((1, 1, mix))}-output:{NUM_CLASSES}",
    ]
    return keys


class LatencyLookupTable:
    """Per-resolution tables of per-layer latencies (milliseconds) for one device."""

    def __init__(self, tables: dict[int, dict[str, LayerEntry]], source: str) -> None:
        if not tables:
            raise LookupTableError(f"no lookup tables in {source}")
        self.tables = tables
        self.source = source
        self.width_mult = self._detect_width()

    @classmethod
    def from_dir(cls, folder: str | Path) -> LatencyLookupTable:
        """Load every ``<resolution>_lookup_table.yaml`` of ``folder`` (``yaml.safe_load``)."""
        folder = Path(folder)
        if not folder.is_dir():
            raise LookupTableError(f"lookup-table folder {folder} does not exist")
        tables = {}
        for path in sorted(folder.iterdir()):
            match = _TABLE_NAME.match(path.name)
            if match:
                tables[int(match.group(1))] = _read_table(path)
        if not tables:
            raise LookupTableError(
                f"{folder} holds no '<resolution>_lookup_table.yaml' files (OFA's format)"
            )
        return cls(tables, source=str(folder))

    @property
    def device(self) -> str:
        """The device name OFA's folder naming carries (``latency_table@note10`` -> note10)."""
        name = Path(self.source).name
        return name.split("@", 1)[1] if "@" in name else name

    @property
    def resolutions(self) -> tuple[int, ...]:
        return tuple(sorted(self.tables))

    def _detect_width(self) -> float:
        """The width multiplier of the network the tables describe, from the first conv."""
        for table in self.tables.values():
            for key in table:
                if key.startswith("Conv-input:"):
                    channels = int(key.rsplit("x", 1)[1])
                    for width in WIDTH_CHOICES:
                        if SupernetWidths.for_width(width).first_conv == channels:
                            return width
                    raise LookupTableError(
                        f"{self.source}: first conv has {channels} output channels, which is "
                        "neither OFA-MobileNetV3 width 1.0 nor 1.2"
                    )
        raise LookupTableError(f"{self.source}: no 'Conv-input:...' (first conv) entry")

    def latency(self, arch: Arch) -> float:
        """The subnet's latency in ms: its layers' means summed in OFA's order."""
        if arch.r not in self.tables:
            raise LookupTableError(
                f"{self.source} has no table for resolution {arch.r} "
                f"(it has {', '.join(map(str, self.resolutions))})"
            )
        table = self.tables[arch.r]
        total = 0.0
        for key in layer_keys(arch):
            entry = table.get(key)
            if entry is None:
                raise LookupTableError(
                    f"{self.source}/{arch.r}_lookup_table.yaml has no entry {key!r} "
                    f"(needed by {arch.canonical_key})"
                )
            total += entry.mean_ms
        return total

    def device_time_ms(self) -> float:
        """The device time the tables stand for: sum of count x mean over every entry."""
        return sum(e.count * e.mean_ms for table in self.tables.values() for e in table.values())

    def describe(self) -> dict[str, Any]:
        return {
            "kind": "lut",
            "name": self.device,
            "source": self.source,
            "width_mult": self.width_mult,
            "resolutions": list(self.resolutions),
            "entries": sum(len(t) for t in self.tables.values()),
            "device_time_s": self.device_time_ms() / 1000.0,
        }


def _read_table(path: Path) -> dict[str, LayerEntry]:
    try:
        with path.open("rb") as handle:
            raw = yaml.load(handle, Loader=_SafeLoader)  # noqa: S506 - a safe loader
    except yaml.YAMLError as exc:
        raise LookupTableError(f"{path} is not valid YAML: {exc}") from None
    if not isinstance(raw, dict):
        raise LookupTableError(f"{path} must map layer keys to entries, got {type(raw).__name__}")
    table = {}
    for key, entry in raw.items():
        if not isinstance(entry, dict) or "mean" not in entry:
            raise LookupTableError(f"{path}: entry {key!r} has no 'mean'")
        mean, count = entry["mean"], entry.get("count", 1)
        if not isinstance(mean, (int, float)) or isinstance(mean, bool) or not mean >= 0:
            raise LookupTableError(f"{path}: entry {key!r} has mean {mean!r}, not a latency")
        table[str(key)] = LayerEntry(mean_ms=float(mean), count=int(count))
    return table
