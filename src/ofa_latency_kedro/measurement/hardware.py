"""A descriptor of the machine a measurement ran on, stored beside the data it produced.

Values that cannot be read are ``None`` (unknown), never 0.
"""

from __future__ import annotations

import os
import platform
import re
import socket
import sys
from importlib import metadata
from pathlib import Path
from typing import Any

from ofa_latency_kedro.measurement.protocol import available_cpus


def _read(path: str) -> str | None:
    try:
        return Path(path).read_text(errors="replace")
    except OSError:
        return None


def cpu_model() -> str | None:
    info = _read("/proc/cpuinfo") or ""
    for line in info.splitlines():
        if line.lower().startswith(("model name", "hardware", "processor\t: arm")):
            value = line.split(":", 1)[1].strip()
            if value:
                return value
    return platform.processor() or None


def physical_cores() -> int | None:
    info = _read("/proc/cpuinfo")
    if not info:
        return None
    cores = set()
    physical = core = None
    for line in info.splitlines() + [""]:
        if line.startswith("physical id"):
            physical = line.split(":", 1)[1].strip()
        elif line.startswith("core id"):
            core = line.split(":", 1)[1].strip()
        elif not line.strip():
            if core is not None:
                cores.add((physical, core))
            physical = core = None
    return len(cores) or None


def memory_gb() -> float | None:
    info = _read("/proc/meminfo") or ""
    match = re.search(r"^MemTotal:\s+(\d+) kB", info, re.MULTILINE)
    if match:
        return round(int(match.group(1)) / 1024**2, 2)
    try:
        return round(os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES") / 1024**3, 2)
    except (ValueError, OSError, AttributeError):  # pragma: no cover
        return None


def _version(package: str) -> str | None:
    try:
        return metadata.version(package)
    except metadata.PackageNotFoundError:
        return None


def gpu_descriptor(index: int = 0) -> dict[str, Any] | None:
    """Name, SMs, memory and (where the driver reports clocks) peak memory bandwidth."""
    import torch  # noqa: PLC0415 - only where a GPU is asked about

    if not torch.cuda.is_available():
        return None
    props = torch.cuda.get_device_properties(index)
    bandwidth = None
    clock_khz = getattr(props, "memory_clock_rate", None)
    bus_bits = getattr(props, "memory_bus_width", None)
    if clock_khz and bus_bits:
        # Double data rate: two transfers per clock.
        bandwidth = round(2 * clock_khz * 1e3 * bus_bits / 8 / 1e9, 1)
    return {
        "name": props.name,
        "index": index,
        "sms": props.multi_processor_count,
        "memory_gb": round(props.total_memory / 1024**3, 2),
        "bandwidth_gb_s": bandwidth,
        "compute_capability": f"{props.major}.{props.minor}",
        "cuda": torch.version.cuda,
    }


def detect_hardware(threads: int | None = None, gpu: bool = False) -> dict[str, Any]:
    """What this machine is: CPU model, cores, threads the measurement uses, memory, and the
    GPU when ``gpu`` is asked for, plus the software versions that affect latency."""
    return {
        "kind": "gpu" if gpu else "cpu",
        "hostname": socket.gethostname(),
        "cpu_model": cpu_model(),
        "physical_cores": physical_cores(),
        "logical_cpus": os.cpu_count(),
        "cpus_available": available_cpus(),
        "threads_used": threads,
        "memory_gb": memory_gb(),
        "gpu": gpu_descriptor() if gpu else None,
        "os": platform.platform(),
        "python": sys.version.split()[0],
        "torch": _version("torch"),
        "onnxruntime": _version("onnxruntime"),
    }


def slug(text: str) -> str:
    """A file-name-safe spelling of a device name (``AMD EPYC 7B13`` -> ``AMD_EPYC_7B13``)."""
    text = re.sub(r"\((R|TM|C)\)", "", text, flags=re.IGNORECASE)
    text = re.sub(r"@.*$", "", text)
    text = re.sub(r"\b(CPU|Processor|NVIDIA)\b", "", text, flags=re.IGNORECASE)
    return re.sub(r"[^A-Za-z0-9.-]+", "_", text).strip("_.-") or "unknown"
