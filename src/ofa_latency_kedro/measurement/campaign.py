"""Building a latency dataset: measure a plan of subnets into one append-only CSV, resuming
where an earlier run stopped, locally or on a Ray cluster."""

from __future__ import annotations

import copy
import logging
import time
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, replace
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pandas as pd

from ofa_latency_kedro.measurement.backends import get_backend, unchecked_reference
from ofa_latency_kedro.measurement.log import LatencyDataError, row_key
from ofa_latency_kedro.measurement.measurers import LocalMeasurer, RayMeasurer
from ofa_latency_kedro.measurement.protocol import Protocol, ReferenceCheck
from ofa_latency_kedro.measurement.session import utc_now
from ofa_latency_kedro.search_space import Arch

if TYPE_CHECKING:
    from ofa_latency_kedro.pipelines.sampling.settings import SamplingSettings

logger = logging.getLogger(__name__)

#: Protocol fields that change the values measured: a dataset keeps them for every row.
VALUE_FIELDS = (
    "batch_size",
    "warmup_runs",
    "rounds",
    "runs_per_round",
    "threads",
    "fold_bn",
    "statistic",
    "reference",
    "input_seed",
)


@dataclass(frozen=True)
class RayPlacement:
    """Where measurement tasks run on Ray: the cluster at ``address``, the node that offers
    ``resource``, ``num_cpus`` CPUs reserved there per task."""

    address: str
    resource: str
    num_cpus: float


@dataclass(frozen=True)
class SamplingTarget:
    """Where and how a dataset is measured: ``<hardware>_<space>.csv`` with one backend and
    protocol, in this process or on the Ray node that offers ``ray.resource``."""

    hardware: str
    space: str
    backend: str
    protocol: Protocol
    lut_dir: str | None = None
    ray: RayPlacement | None = None

    @property
    def name(self) -> str:
        return f"{self.hardware}_{self.space}"

    @classmethod
    def from_settings(cls, settings: SamplingSettings, space: str) -> SamplingTarget:
        """The target of checked ``sampling`` settings: ``hardware: auto`` names this
        machine's device, ``lut_dir`` becomes absolute (Ray tasks read it elsewhere) and the
        Ray resource defaults to ``hw:<hardware>``."""
        lut_dir = None if settings.lut_dir is None else str(Path(settings.lut_dir).resolve())
        hardware = settings.hardware
        if hardware == "auto":
            backend = get_backend(settings.backend, settings.protocol, lut_dir=lut_dir)
            hardware = backend.default_hardware_name()
        ray = None
        if settings.ray.address:
            ray = RayPlacement(
                address=settings.ray.address,
                resource=settings.ray.resource or f"hw:{hardware}",
                num_cpus=settings.ray.num_cpus,
            )
        return cls(hardware, space, settings.backend, settings.protocol, lut_dir, ray)

    def measurer(self, protocol: Protocol | None = None) -> LocalMeasurer | RayMeasurer:
        protocol = protocol or self.protocol
        if self.ray is None:
            return LocalMeasurer(self.backend, protocol, lut_dir=self.lut_dir)
        return RayMeasurer(
            self.backend,
            protocol,
            address=self.ray.address,
            resource=self.ray.resource,
            lut_dir=self.lut_dir,
            num_cpus=self.ray.num_cpus,
        )


def check_resumable(
    sidecar: dict[str, Any] | None, target: SamplingTarget, protocol: Protocol, width_mult: float
) -> None:
    """Refuse to append rows measured differently from the rows already in the dataset."""
    if not sidecar:
        return
    problems = []
    if sidecar.get("backend") != target.backend:
        problems.append(f"backend {sidecar.get('backend')!r} (now {target.backend!r})")
    if sidecar.get("width_mult") not in (None, width_mult):
        problems.append(f"width_mult {sidecar.get('width_mult')} (now {width_mult})")
    stored = sidecar.get("protocol") or {}
    current = protocol.to_dict()
    for field in VALUE_FIELDS:
        if field in stored and stored[field] != current[field]:
            problems.append(f"protocol.{field} {stored[field]!r} (now {current[field]!r})")
    if problems:
        raise LatencyDataError(
            f"dataset '{target.name}' was measured with {'; '.join(problems)}. Rows measured "
            "differently must not share a file: keep the earlier settings, or give this run "
            "another sampling.hardware name"
        )


def _with_stored_reference(protocol: Protocol, sidecar: dict[str, Any] | None) -> Protocol:
    """A resumed dataset keeps the reference latency its first run measured."""
    stored = (sidecar or {}).get("protocol") or {}
    if protocol.reference_ms is None and stored.get("reference_ms"):
        return replace(protocol, reference_ms=float(stored["reference_ms"]))
    return protocol


def measure_plan(
    plan: Sequence[Arch],
    existing: pd.DataFrame | None,
    sidecar: dict[str, Any] | None,
    target: SamplingTarget,
    *,
    progress: bool | None = True,
    strategy: dict[str, Any] | None = None,
) -> Iterator[tuple[str, Any]]:
    """Measure the subnets of ``plan`` that ``existing`` lacks, yielding ``("sidecar", dict)``
    before and after, and ``("rows", list_of_rows)`` as soon as each group is measured.

    Each session first measures the reference subnet again (`Backend.check_reference`) and
    records it (``reference_now_ms``, ``reference_drift``, ``reference_check``), warning when
    it differs from the dataset's ``reference_ms`` by more than `REFERENCE_DRIFT_WARNING`;
    the dataset keeps its scale. ``strategy`` (how the plan was chosen, e.g.
    ``{"strategy": "frontier", "budgets_ms": [...]}``) goes into the session's entry. At the
    end the repeat probe measures again some of this run's rows and some rows of earlier
    sessions (`probe_picks`).

    The caller holds the dataset's writer lock, so a session of the sidecar still
    ``"running"`` is one of a run that was killed: it is recorded as ``"interrupted"``."""
    width = plan[0].width_mult if plan else 1.0
    done = {row_key(row) for row in existing.to_dict("records")} if existing is not None else set()
    todo = [arch for arch in plan if arch.canonical_key not in done]
    protocol = _with_stored_reference(target.protocol, sidecar)
    with target.measurer(protocol) as measurer:
        descriptor = measurer.start()
        settled = measurer.protocol
        check_resumable(sidecar, target, settled, width)
        started_at = utc_now()
        check = measurer.check_reference()
        if check is not None and check.drifted:
            logger.warning(check.warning(f"dataset '{target.name}'"))
        session: dict[str, Any] = {
            "started_at": started_at,
            "status": "running",
            "planned": len(plan),
            "already_measured": len(plan) - len(todo),
            "measured": 0,
            **(strategy or {}),
            "ray_address": None if target.ray is None else target.ray.address,
            "hostname": descriptor.get("hostname"),
            **(unchecked_reference(target.backend) if check is None else check.record()),
        }
        record = {
            "name": target.name,
            "hardware": target.hardware,
            "space": target.space,
            "backend": target.backend,
            "width_mult": width,
            "lut_dir": target.lut_dir,
            "protocol": settled.to_dict(),
            "descriptor": descriptor,
            "sessions": [*_ended((sidecar or {}).get("sessions", [])), session],
        }
        logger.info(
            "Measuring %d of %d planned '%s' subnets with %s on %s (%d already in %s.csv)%s",
            len(todo),
            len(plan),
            target.space,
            target.backend,
            target.hardware,
            len(plan) - len(todo),
            target.name,
            "" if target.ray is None else f" via Ray at {target.ray.address}",
        )
        yield "sidecar", copy.deepcopy(record)
        started = time.perf_counter()
        rows: list[dict[str, Any]] = []
        for group in measurer.iter_groups(
            todo, hardware=target.hardware, space=target.space, progress=progress
        ):
            rows.extend(group)
            yield "rows", group
        seconds = time.perf_counter() - started
        probe = measurer.probe(
            rows,
            hardware=target.hardware,
            space=target.space,
            earlier=[] if existing is None else existing.to_dict("records"),
            seed=len(record["sessions"]) - 1,
        )
        session.update(
            status="complete",
            finished_at=utc_now(),
            measured=len(rows),
            seconds=round(seconds, 3),
            subnets_per_minute=round(len(rows) / seconds * 60, 2) if rows and seconds > 0 else None,
            repeat_probe=probe,
        )
        yield "sidecar", copy.deepcopy(record)


def _ended(sessions: Sequence[dict[str, Any]]) -> list[dict[str, Any]]:
    """Earlier sessions, those that never finished marked ``"interrupted"``."""
    return [
        {**session, "status": "interrupted"} if session.get("status") == "running" else session
        for session in sessions
    ]


def drift_warnings(sidecar: dict[str, Any] | None) -> list[str]:
    """The warning of the last session of a dataset when its reference measured more than
    `REFERENCE_DRIFT_WARNING` away from the dataset's ``reference_ms`` (else none)."""
    session = ((sidecar or {}).get("sessions") or [{}])[-1]
    now = session.get("reference_now_ms")
    calibrated = ((sidecar or {}).get("protocol") or {}).get("reference_ms")
    if now is None or not calibrated:
        return []
    check = ReferenceCheck(float(now), float(calibrated))
    return [check.warning(f"dataset '{sidecar.get('name')}'")] if check.drifted else []


def summarize_dataset(frame: pd.DataFrame, sidecar: dict[str, Any] | None) -> dict[str, Any]:
    """The figures a sampling run ends with: size, latency range, throughput, noise (within
    the run and across sessions), and the warning of a drifted reference."""
    session = ((sidecar or {}).get("sessions") or [{}])[-1]
    latency = frame["latency"].astype(float) if len(frame) else pd.Series(dtype=float)
    return {
        "file": frame.attrs.get("source"),
        "hardware": (sidecar or {}).get("hardware"),
        "space": (sidecar or {}).get("space"),
        "backend": (sidecar or {}).get("backend"),
        "rows": len(frame),
        "latency_ms": {
            "min": float(latency.min()) if len(latency) else None,
            "median": float(latency.median()) if len(latency) else None,
            "max": float(latency.max()) if len(latency) else None,
        },
        "protocol": (sidecar or {}).get("protocol"),
        "last_session": session,
        "warnings": drift_warnings(sidecar),
    }
