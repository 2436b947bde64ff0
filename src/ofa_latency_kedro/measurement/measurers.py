"""Who runs the measurements: this process (`LocalMeasurer`) or a Ray cluster (`RayMeasurer`).

On Ray every task is pinned, through a custom resource such as ``{"hw:jetson-orin": 1}``, to
the node that owns the target device; with one unit of that resource per device, tasks for a
device run one after another, so measurements never share the device.
"""

from __future__ import annotations

import logging
import socket
import time
from collections.abc import Iterable, Iterator, Sequence
from pathlib import Path
from types import TracebackType
from typing import Any

import pandas as pd

from ofa_latency_kedro.errors import OfaLatencyError, ParameterError
from ofa_latency_kedro.measurement.backends import DEFAULT_BACKEND, Backend, get_backend
from ofa_latency_kedro.measurement.protocol import Protocol, ReferenceCheck
from ofa_latency_kedro.measurement.session import (
    iter_measured_groups,
    latency_frame,
    measurement_rows,
    probe_picks,
    summarize_probes,
)
from ofa_latency_kedro.progress import progress_bar
from ofa_latency_kedro.search_space import Arch, ArchLike

logger = logging.getLogger(__name__)


class RayUnavailable(OfaLatencyError, RuntimeError):
    """The Ray cluster cannot be reached or cannot run the tasks asked of it."""


class LocalMeasurer:
    """Measures in this process, on this machine."""

    def __init__(self, backend: str, protocol: Protocol, lut_dir: str | Path | None = None) -> None:
        self.backend: Backend = get_backend(backend, protocol, lut_dir=lut_dir)

    def __enter__(self) -> LocalMeasurer:
        self.backend.__enter__()
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self.backend.__exit__(exc_type, exc, traceback)

    @property
    def protocol(self) -> Protocol:
        return self.backend.protocol

    def start(self) -> dict[str, Any]:
        """Settle the protocol on this machine (measuring ``reference_ms`` when needed) and
        return the hardware descriptor."""
        self.backend.resolve_protocol()
        return self.backend.describe()

    def default_hardware_name(self) -> str:
        return self.backend.default_hardware_name()

    def iter_groups(
        self, archs: Sequence[Arch], *, hardware: str, space: str | None, progress: bool | None
    ) -> Iterator[list[dict[str, Any]]]:
        """Rows of each group of subnets, as soon as the group is measured."""
        return iter_measured_groups(
            archs, self.backend, hardware=hardware, space=space, progress=progress
        )

    def check_reference(self) -> ReferenceCheck | None:
        """The reference measured now against the dataset's ``reference_ms`` (None: passes
        are not paired with the reference)."""
        return self.backend.check_reference()

    def probe(
        self,
        rows: Sequence[dict[str, Any]],
        *,
        hardware: str,
        space: str | None,
        earlier: Sequence[dict[str, Any]] = (),
        seed: int = 0,
    ) -> dict[str, Any]:
        """Measure again some of ``rows`` (this run's) and of ``earlier`` (rows of earlier
        sessions, see `probe_picks`); the noise within the run and across sessions."""
        within, across = probe_picks(rows, earlier, self.backend.protocol.repeat_probe, seed)
        archs = [_row_arch(row) for row in within + across]
        again = (
            measurement_rows(archs, self.backend, hardware=hardware, space=space) if archs else []
        )
        return summarize_probes(within, across, again)


def _row_arch(row: dict[str, Any]) -> Arch:
    width = row.get("width_mult")
    known = width is not None and width != "" and not pd.isna(width)
    return Arch.parse(row["child_arch"], width_mult=float(width) if known else None)


# -- Ray ------------------------------------------------------------------------------------
def _measure_chunk(
    arch_json: list[str],
    *,
    backend: str,
    protocol: dict[str, Any],
    lut_dir: str | None,
    hardware: str,
    space: str | None,
) -> list[dict[str, Any]]:
    """Ray task body: measure a few subnets on the node the task was pinned to."""
    archs = [Arch.from_json(text) for text in arch_json]
    with get_backend(backend, Protocol.from_dict(protocol), lut_dir=lut_dir) as runner:
        return measurement_rows(archs, runner, hardware=hardware, space=space)


def _start_on_node(backend: str, protocol: dict[str, Any], lut_dir: str | None) -> dict[str, Any]:
    """Ray task body: settle the protocol on the node the task runs on (its thread count, its
    reference latency) and describe the node and its device."""
    import ray  # noqa: PLC0415

    with get_backend(backend, Protocol.from_dict(protocol), lut_dir=lut_dir) as runner:
        settled = runner.resolve_protocol()
        descriptor = runner.describe()
    descriptor["ray_node_id"] = ray.get_runtime_context().get_node_id()
    return {"descriptor": descriptor, "protocol": settled.to_dict()}


def _reference_on_node(backend: str, protocol: dict[str, Any], lut_dir: str | None) -> float:
    """Ray task body: the reference subnet measured on the node, as a calibration does."""
    with get_backend(backend, Protocol.from_dict(protocol), lut_dir=lut_dir) as runner:
        return runner.measure_reference()


def check_ray_reachable(address: str, timeout_s: float) -> None:
    """Fail fast, with the address in the message, when nothing listens there."""
    if address in ("auto", "local") or address.startswith("ray://"):
        host_port = address.removeprefix("ray://") if address.startswith("ray://") else None
    else:
        host_port = address
    if not host_port:
        return
    host, _, port = host_port.rpartition(":")
    if not host or not port.isdigit():
        raise RayUnavailable(
            f"Ray address {address!r} is not 'auto', 'local', 'host:port' or 'ray://host:port'"
        )
    try:
        with socket.create_connection((host, int(port)), timeout=timeout_s):
            pass
    except OSError as exc:
        raise RayUnavailable(
            f"cannot reach the Ray cluster at {address}: {exc}. Start it with "
            f"`ray start --head --port {port}` on that host, or set the Ray address to null "
            "to run in this process"
        ) from None


class RayMeasurer:
    """Fans measurement out to a Ray cluster, one group of ``protocol.interleave`` subnets
    per task."""

    def __init__(
        self,
        backend: str,
        protocol: Protocol,
        *,
        address: str,
        resource: str,
        lut_dir: str | Path | None = None,
        num_cpus: float,
        connect_timeout_s: float = 10.0,
    ) -> None:
        self.backend = backend
        self.protocol = protocol
        self.address = address
        self.resource = resource
        self.lut_dir = None if lut_dir is None else str(Path(lut_dir).resolve())
        self.num_cpus = num_cpus
        self.connect_timeout_s = connect_timeout_s
        self._started_ray = False
        self._calibrated = False  # whether start measured reference_ms on the node

    def __enter__(self) -> RayMeasurer:
        import ray  # noqa: PLC0415

        check_ray_reachable(self.address, self.connect_timeout_s)
        if not ray.is_initialized():
            try:
                if self.address == "local":
                    ray.init(resources={self.resource: 1}, logging_level=logging.WARNING)
                else:
                    ray.init(address=self.address, logging_level=logging.WARNING)
            except Exception as exc:
                raise RayUnavailable(
                    f"cannot connect to the Ray cluster at {self.address}: {exc}"
                ) from exc
            self._started_ray = True
        offered = ray.cluster_resources()
        if offered.get(self.resource, 0) < 1:
            custom = sorted(
                k
                for k in offered
                if k not in ("CPU", "GPU", "memory", "object_store_memory")
                and not k.startswith("node:")
            )
            self.__exit__(None, None, None)
            raise RayUnavailable(
                f"no node of the Ray cluster at {self.address} offers the resource "
                f"'{self.resource}' (custom resources offered: {', '.join(custom) or 'none'}). "
                f"Start the device's node with `ray start --address=<head> "
                f"--resources='{{\"{self.resource}\": 1}}'`"
            )
        self._remote_measure = ray.remote(_measure_chunk)
        self._remote_start = ray.remote(_start_on_node)
        self._remote_reference = ray.remote(_reference_on_node)
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        import ray  # noqa: PLC0415

        if self._started_ray and ray.is_initialized():
            ray.shutdown()
            self._started_ray = False

    def _options(self) -> dict[str, Any]:
        return {"resources": {self.resource: 1}, "num_cpus": self.num_cpus, "max_retries": 0}

    def start(self) -> dict[str, Any]:
        """Settle the protocol on the device's node and return that node's descriptor."""
        import ray  # noqa: PLC0415

        task = self._remote_start.options(**self._options())
        started = ray.get(task.remote(self.backend, self.protocol.to_dict(), self.lut_dir))
        settled = Protocol.from_dict(started["protocol"])
        self._calibrated = self.protocol.reference_ms is None and settled.reference_ms is not None
        self.protocol = settled
        return {**started["descriptor"], "ray_address": self.address, "ray_resource": self.resource}

    def check_reference(self) -> ReferenceCheck | None:
        """The reference measured now on the device's node against the dataset's
        ``reference_ms`` (None: passes are not paired with the reference); a calibration
        `start` made there is that measurement."""
        import ray  # noqa: PLC0415

        if not self.protocol.reference:
            return None
        if self._calibrated:
            return ReferenceCheck(
                self.protocol.reference_ms, self.protocol.reference_ms, calibrated=True
            )
        task = self._remote_reference.options(**self._options())
        now = ray.get(task.remote(self.backend, self.protocol.to_dict(), self.lut_dir))
        return ReferenceCheck(now, self.protocol.reference_ms)

    def default_hardware_name(self) -> str:
        raise ParameterError(
            "hardware",
            f"must name the device with Ray: its node offers the resource '{self.resource}' "
            "and the dataset is named after it",
        )

    def _submit(self, archs: Sequence[Arch], hardware: str, space: str | None) -> list[Any]:
        task = self._remote_measure.options(**self._options())
        protocol = self.protocol.to_dict()
        return [
            task.remote(
                [a.to_json() for a in archs[start : start + self.protocol.interleave]],
                backend=self.backend,
                protocol=protocol,
                lut_dir=self.lut_dir,
                hardware=hardware,
                space=space,
            )
            for start in range(0, len(archs), self.protocol.interleave)
        ]

    def iter_groups(
        self, archs: Sequence[Arch], *, hardware: str, space: str | None, progress: bool | None
    ) -> Iterator[list[dict[str, Any]]]:
        """Rows of each task's group of subnets, as each task finishes (in completion order)."""
        import ray  # noqa: PLC0415

        pending = self._submit(archs, hardware, space)
        started = time.perf_counter()
        with progress_bar(len(archs), f"{self.backend} on {hardware} via Ray", progress) as bar:
            try:
                while pending:
                    done, pending = ray.wait(pending, num_returns=1)
                    rows = ray.get(done[0])
                    yield rows
                    bar.update(len(rows))
            finally:
                for ref in pending:
                    ray.cancel(ref, force=True)
        logger.debug(
            "Ray measurement of %d subnets took %.1f s", len(archs), time.perf_counter() - started
        )

    def probe(
        self,
        rows: Sequence[dict[str, Any]],
        *,
        hardware: str,
        space: str | None,
        earlier: Sequence[dict[str, Any]] = (),
        seed: int = 0,
    ) -> dict[str, Any]:
        """As `LocalMeasurer.probe`, on the device's node."""
        import ray  # noqa: PLC0415

        within, across = probe_picks(rows, earlier, self.protocol.repeat_probe, seed)
        picks = within + across
        chunks = ray.get(self._submit([_row_arch(r) for r in picks], hardware, space))
        return summarize_probes(within, across, [row for chunk in chunks for row in chunk])


def measure(
    archs: Iterable[ArchLike],
    backend: str = DEFAULT_BACKEND,
    *,
    hardware: str | None = None,
    space: str | None = None,
    lut_dir: str | Path | None = None,
    progress: bool | None = None,
    width_mult: float | None = None,
    **protocol: Any,
) -> pd.DataFrame:
    """Measure subnets on this machine and return rows in the latency-CSV format.

    ``protocol`` takes the fields of `Protocol` (batch_size, warmup_runs, rounds,
    runs_per_round, threads, fold_bn, statistic, reference, repeat_probe, ...). The frame's ``attrs`` carry the hardware descriptor, the protocol,
    the repeat probe's noise figures and the throughput.
    """
    parsed = [Arch.parse(a, width_mult=width_mult) for a in archs]
    settings = Protocol.from_dict(protocol, "")
    started = time.perf_counter()
    with LocalMeasurer(backend, settings, lut_dir=lut_dir) as measurer:
        descriptor = measurer.start()
        name = hardware or measurer.default_hardware_name()
        rows = [
            row
            for group in measurer.iter_groups(parsed, hardware=name, space=space, progress=progress)
            for row in group
        ]
        seconds = time.perf_counter() - started
        probe = measurer.probe(rows, hardware=name, space=space)
        frame = latency_frame(rows)
        frame.attrs.update(
            hardware=descriptor,
            protocol=measurer.protocol.to_dict(),
            repeat_probe=probe,
            seconds=seconds,
            subnets_per_minute=len(rows) / seconds * 60 if seconds > 0 else None,
        )
    return frame
