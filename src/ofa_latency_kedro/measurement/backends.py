"""Measurement backends: how one subnet is run and timed.

``torch-cpu``         eager PyTorch on the CPU, wall clock per forward pass
``torch-cuda``        eager PyTorch on a GPU, synchronised before and after every pass
``torch-cuda-graph``  the forward pass captured once as a CUDA graph, replays timed with CUDA
                      events (no Python dispatch in the figure)
``onnxruntime-cpu``   the subnet exported to ONNX and run by ONNX Runtime on the CPU
``lut``               OFA's per-layer lookup tables summed (no device needed)
"""

from __future__ import annotations

import gc
import io
import logging
import time
import warnings
from abc import ABC, abstractmethod
from collections.abc import Callable, Sequence
from dataclasses import replace
from pathlib import Path
from types import TracebackType
from typing import Any, ClassVar

import numpy as np

from ofa_latency_kedro.errors import OfaLatencyError, ParameterError
from ofa_latency_kedro.measurement.hardware import cpu_model, detect_hardware, gpu_descriptor, slug
from ofa_latency_kedro.measurement.lookup_table import LatencyLookupTable
from ofa_latency_kedro.measurement.protocol import (
    REFERENCE_ARCH,
    Protocol,
    ReferenceCheck,
    Timing,
)
from ofa_latency_kedro.search_space import Arch, build_subnet

logger = logging.getLogger(__name__)


#: The backend `measure` and the sampling pipeline use when none is named.
DEFAULT_BACKEND = "torch-cpu"


class BackendUnavailable(OfaLatencyError, RuntimeError):
    """The backend cannot run here (no CUDA device, a missing package); says which."""


class SubnetRunner(ABC):
    """One subnet, built and ready: ``time_once`` runs one forward pass and returns its
    duration in milliseconds."""

    @abstractmethod
    def time_once(self) -> float: ...

    def close(self) -> None:
        return None


class _ClockedRunner(SubnetRunner):
    """Times a callable with the wall clock (the callable synchronises where it must)."""

    def __init__(self, run: Callable[[], Any]) -> None:
        self.run = run

    def time_once(self) -> float:
        start = time.perf_counter()
        self.run()
        return (time.perf_counter() - start) * 1e3


class Backend(ABC):
    """Times subnets under a `Protocol`. Use as a context manager: entering fixes the thread
    count (and other process-wide settings), leaving restores them."""

    name: ClassVar[str]
    kind: ClassVar[str] = "cpu"

    def __init__(self, protocol: Protocol) -> None:
        self.protocol = protocol
        self._calibrated_ms: float | None = None  # reference_ms measured by resolve_protocol

    @classmethod
    def unavailable_reason(cls) -> str | None:
        """Why this backend cannot run on this machine, or None when it can."""
        return None

    def __enter__(self) -> Backend:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        return None

    def prepare(self, arch: Arch) -> Arch:
        """The arch this backend actually measures (the lookup table fixes the width)."""
        return arch

    @abstractmethod
    def runner(self, arch: Arch) -> SubnetRunner:
        """Build the subnet for this backend, ready to be timed."""

    @property
    def uses_reference(self) -> bool:
        """Whether passes are paired with the reference subnet (by default on CPUs)."""
        if self.protocol.reference is None:
            return self.kind == "cpu"
        return self.protocol.reference

    def resolve_protocol(self) -> Protocol:
        """Settle the protocol's reference: on or off, and ``reference_ms`` measured here
        when it is on and not given (store the result to keep a dataset consistent)."""
        protocol = self.protocol
        if not self.uses_reference:
            protocol = replace(protocol, reference=False, reference_ms=None)
        elif protocol.reference_ms is None:
            self._calibrated_ms = self.measure_reference()
            protocol = replace(protocol, reference=True, reference_ms=self._calibrated_ms)
        else:
            protocol = replace(protocol, reference=True)
        self.protocol = protocol
        return protocol

    def measure_reference(self) -> float:
        """The reference subnet's latency on this machine now, as a dataset's ``reference_ms``
        is calibrated: ``warmup_runs`` passes, then the median of max(60, 2 x timed runs)."""
        runner = self.runner(Arch.parse(REFERENCE_ARCH))
        try:
            for _ in range(self.protocol.warmup_runs):
                runner.time_once()
            passes = [runner.time_once() for _ in range(max(60, 2 * self.protocol.timed_runs))]
        finally:
            runner.close()
        return float(np.median(passes))

    def check_reference(self) -> ReferenceCheck | None:
        """The reference measured now against the protocol's ``reference_ms`` (None when passes
        are not paired with the reference). When `resolve_protocol` calibrated it here, that
        calibration is the measurement (no second one)."""
        protocol = self.resolve_protocol()
        if not protocol.reference:
            return None
        calibrated = self._calibrated_ms
        if calibrated is not None and calibrated == protocol.reference_ms:
            return ReferenceCheck(calibrated, calibrated, calibrated=True)
        return ReferenceCheck(self.measure_reference(), protocol.reference_ms)

    def sample_subnets(
        self, archs: Sequence[Arch]
    ) -> tuple[list[np.ndarray], list[np.ndarray] | None]:
        """Per-pass times (ms) of each subnet, shaped (rounds, runs_per_round), and the paired
        reference passes when the protocol uses the reference (else None).

        The subnets are warmed up, then take turns round by round, so a burst of
        interference from elsewhere on the machine spoils one round of several subnets
        rather than every pass of one.
        """
        protocol = self.resolve_protocol()
        reference = self.runner(Arch.parse(REFERENCE_ARCH)) if protocol.reference else None
        runners = [self.runner(arch) for arch in archs]
        try:
            for runner in runners + ([reference] if reference else []):
                for _ in range(protocol.warmup_runs):
                    runner.time_once()
            shape = (len(runners), protocol.rounds, protocol.runs_per_round)
            samples = np.zeros(shape)
            references = np.zeros(shape) if reference else None
            collecting = gc.isenabled()
            gc.disable()
            try:
                for round_index in range(protocol.rounds):
                    for i, runner in enumerate(runners):
                        for run in range(protocol.runs_per_round):
                            if reference is not None:
                                references[i, round_index, run] = reference.time_once()
                            samples[i, round_index, run] = runner.time_once()
            finally:
                if collecting:
                    gc.enable()
        finally:
            for runner in runners + ([reference] if reference else []):
                runner.close()
        return list(samples), None if references is None else list(references)

    def time_subnets(self, archs: Sequence[Arch]) -> list[Timing]:
        """The latency of each subnet under the protocol."""
        samples, references = self.sample_subnets(archs)
        return [
            Timing.from_samples(
                subnet,
                self.protocol.statistic,
                None if references is None else references[i],
                self.protocol.reference_ms,
            )
            for i, subnet in enumerate(samples)
        ]

    def describe(self) -> dict[str, Any]:
        """The hardware descriptor stored with the data."""
        return detect_hardware(threads=self.protocol.resolved_threads, gpu=self.kind == "gpu")

    def default_hardware_name(self) -> str:
        return f"{slug(cpu_model() or 'unknown')}_CPU"


def fold_batch_norms(net: Any) -> Any:
    """Fold every BatchNorm that follows a convolution into it (inference graphs do this)."""
    import torch  # noqa: PLC0415
    from torch.nn.utils.fusion import fuse_conv_bn_eval  # noqa: PLC0415

    for module in net.modules():
        if isinstance(module, torch.nn.Sequential) and "conv" in module._modules:
            bn = module._modules.get("bn")
            if isinstance(bn, torch.nn.BatchNorm2d):
                module._modules["conv"] = fuse_conv_bn_eval(module._modules["conv"], bn)
                module._modules["bn"] = torch.nn.Identity()
    return net


_first_network_dropped = False


def drop_first_network() -> None:
    """Build one network and drop it, once per process, before any network that is timed.

    On the 2-core VM this project was developed on, the networks a process builds before it
    has dropped one run slower than later builds of the same subnets, for as long as they
    live: the reference subnet 10.5-11.0 ms against 8.4-8.6 ms, other subnets 30-80% slower
    (measured 2026-11-27; `benchmarks/reference_drift.py` prints the first figures). Pairing
    with the reference does not cancel it (it differs by subnet): it skewed the calibration
    of ``reference_ms`` and the first group of subnets a process measured."""
    global _first_network_dropped  # noqa: PLW0603 - once per process, by design
    if not _first_network_dropped:
        build_subnet(Arch.parse(REFERENCE_ARCH))
        _first_network_dropped = True


class _TorchBackend(Backend):
    """Shared set-up of the PyTorch-built backends: one model and one fixed input per subnet."""

    def __enter__(self) -> Backend:
        import torch  # noqa: PLC0415

        self._previous_threads = torch.get_num_threads()
        torch.set_num_threads(self.protocol.resolved_threads)
        return self

    def __exit__(self, exc_type, exc, traceback) -> None:  # type: ignore[no-untyped-def]
        import torch  # noqa: PLC0415

        torch.set_num_threads(self._previous_threads)

    def model_and_input(self, arch: Arch) -> tuple[Any, Any]:
        import torch  # noqa: PLC0415

        drop_first_network()
        net = build_subnet(arch).eval()
        if self.protocol.fold_bn:
            fold_batch_norms(net)
        generator = torch.Generator().manual_seed(self.protocol.input_seed)
        x = torch.randn(self.protocol.batch_size, 3, arch.r, arch.r, generator=generator)
        return net, x


class TorchCPUBackend(_TorchBackend):
    name = "torch-cpu"

    def runner(self, arch: Arch) -> SubnetRunner:
        import torch  # noqa: PLC0415

        net, x = self.model_and_input(arch)

        def run() -> None:
            with torch.inference_mode():
                net(x)

        return _ClockedRunner(run)


def _cuda_unavailable() -> str | None:
    try:
        import torch  # noqa: PLC0415
    except ImportError:  # pragma: no cover
        return "PyTorch is not installed"
    if not torch.cuda.is_available():
        return "no CUDA device is available (torch.cuda.is_available() is False)"
    return None


class _CudaBackend(_TorchBackend):
    kind = "gpu"

    @classmethod
    def unavailable_reason(cls) -> str | None:
        return _cuda_unavailable()

    def __enter__(self) -> Backend:
        import torch  # noqa: PLC0415

        super().__enter__()
        self._previous_benchmark = torch.backends.cudnn.benchmark
        torch.backends.cudnn.benchmark = True
        return self

    def __exit__(self, exc_type, exc, traceback) -> None:  # type: ignore[no-untyped-def]
        import torch  # noqa: PLC0415

        torch.backends.cudnn.benchmark = self._previous_benchmark
        super().__exit__(exc_type, exc, traceback)

    def default_hardware_name(self) -> str:
        gpu = gpu_descriptor() or {"name": "unknown"}
        return f"{slug(gpu['name'])}_GPU"


class TorchCUDABackend(_CudaBackend):
    """Eager PyTorch on the GPU, synchronised before and after every timed pass, so the
    figure is the pass's real duration rather than the time to queue its kernels."""

    name = "torch-cuda"

    def runner(self, arch: Arch) -> SubnetRunner:
        import torch  # noqa: PLC0415

        net, x = self.model_and_input(arch)
        net, x = net.cuda(), x.cuda()
        torch.cuda.synchronize()

        def run() -> None:
            with torch.inference_mode():
                net(x)
            torch.cuda.synchronize()

        return _ClockedRunner(run)


class _CudaGraphRunner(SubnetRunner):
    """A captured CUDA graph, replayed between two CUDA events."""

    def __init__(self, net: Any, x: Any) -> None:
        import torch  # noqa: PLC0415

        self.torch = torch
        with torch.no_grad():
            side = torch.cuda.Stream()
            side.wait_stream(torch.cuda.current_stream())
            with torch.cuda.stream(side):
                for _ in range(3):  # CUDA graphs need a few eager passes before capture
                    net(x)
            torch.cuda.current_stream().wait_stream(side)
            self.graph = torch.cuda.CUDAGraph()
            with torch.cuda.graph(self.graph):
                self.output = net(x)
        self.net, self.x = net, x
        self.start = torch.cuda.Event(enable_timing=True)
        self.end = torch.cuda.Event(enable_timing=True)

    def time_once(self) -> float:
        self.start.record()
        self.graph.replay()
        self.end.record()
        self.end.synchronize()
        return float(self.start.elapsed_time(self.end))

    def close(self) -> None:
        del self.graph, self.output
        self.torch.cuda.synchronize()


class TorchCUDAGraphBackend(_CudaBackend):
    """The forward pass captured once as a CUDA graph and replayed: no Python dispatch in the
    figure, which makes it repeat to ~0.1% where eager timings vary by ~10%."""

    name = "torch-cuda-graph"

    def default_hardware_name(self) -> str:
        return super().default_hardware_name() + "_cudagraph"

    def runner(self, arch: Arch) -> SubnetRunner:
        net, x = self.model_and_input(arch)
        return _CudaGraphRunner(net.cuda(), x.cuda())


class OnnxRuntimeCPUBackend(_TorchBackend):
    """Exports each subnet with PyTorch's TorchScript-based ONNX exporter (about 10x faster
    per subnet than the torch.export-based one on these networks; that one is used where the
    older exporter is gone) and times ``InferenceSession.run`` on the CPU."""

    name = "onnxruntime-cpu"
    opset = 17

    @classmethod
    def unavailable_reason(cls) -> str | None:
        for package in ("onnxruntime", "onnx"):
            try:
                __import__(package)
            except ImportError:
                return f"the '{package}' package is not installed (pip install {package})"
        return None

    def default_hardware_name(self) -> str:
        return super().default_hardware_name() + "_onnxruntime"

    def describe(self) -> dict[str, Any]:
        return {**super().describe(), "onnx_opset": self.opset}

    def export(self, net: Any, x: Any) -> bytes:
        import torch  # noqa: PLC0415

        buffer = io.BytesIO()
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", DeprecationWarning)
            try:
                torch.onnx.export(
                    net,
                    (x,),
                    buffer,
                    dynamo=False,
                    opset_version=self.opset,
                    input_names=["input"],
                    output_names=["logits"],
                    do_constant_folding=True,
                )
                return buffer.getvalue()
            except TypeError:  # a PyTorch without the TorchScript exporter
                program = torch.onnx.export(net, (x,), dynamo=True, opset_version=self.opset)
                return program.model_proto.SerializeToString()

    def runner(self, arch: Arch) -> SubnetRunner:
        import onnxruntime as ort  # noqa: PLC0415

        net, x = self.model_and_input(arch)
        options = ort.SessionOptions()
        options.intra_op_num_threads = self.protocol.resolved_threads
        options.inter_op_num_threads = 1
        options.execution_mode = ort.ExecutionMode.ORT_SEQUENTIAL
        options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
        options.log_severity_level = 3
        session = ort.InferenceSession(
            self.export(net, x), options, providers=["CPUExecutionProvider"]
        )
        feeds = {session.get_inputs()[0].name: x.numpy()}
        return _ClockedRunner(lambda: session.run(None, feeds))


class LookupTableBackend(Backend):
    """Sums OFA's per-layer lookup tables; subnets are looked up on the network the tables
    describe (the Note10 tables describe width 1.2)."""

    name = "lut"
    kind = "lut"

    def __init__(self, protocol: Protocol, lut_dir: str | Path | None = None) -> None:
        super().__init__(protocol)
        if lut_dir is None:
            raise ParameterError(
                "lut_dir",
                "must be given for the 'lut' backend: a folder of OFA "
                "'<resolution>_lookup_table.yaml' files, e.g. ../shared/seed_data/latency_table@note10",
            )
        self.table = LatencyLookupTable.from_dir(lut_dir)
        self._warned_width = False

    def prepare(self, arch: Arch) -> Arch:
        if arch.width_mult == self.table.width_mult:
            return arch
        if not self._warned_width:
            logger.warning(
                "The lookup tables in %s describe the width-%s network; subnets given at width "
                "%s are looked up at width %s.",
                self.table.source,
                self.table.width_mult,
                arch.width_mult,
                self.table.width_mult,
            )
            self._warned_width = True
        return arch.replace(width_mult=self.table.width_mult)

    def runner(self, arch: Arch) -> SubnetRunner:
        raise NotImplementedError("lookup tables are summed, not run")

    def time_subnets(self, archs: Sequence[Arch]) -> list[Timing]:
        return [Timing.exact(self.table.latency(self.prepare(arch))) for arch in archs]

    def describe(self) -> dict[str, Any]:
        return self.table.describe()

    def default_hardware_name(self) -> str:
        return f"{slug(self.table.device)}_lookuptable"


BACKENDS: dict[str, type[Backend]] = {
    cls.name: cls
    for cls in (
        TorchCPUBackend,
        TorchCUDABackend,
        TorchCUDAGraphBackend,
        OnnxRuntimeCPUBackend,
        LookupTableBackend,
    )
}


def unchecked_reference(backend: str) -> dict[str, Any]:
    """The reference fields of a session whose passes are not paired with the reference
    subnet: nothing measured, and why."""
    why = (
        "the lut backend sums lookup tables, it times nothing"
        if backend == LookupTableBackend.name
        else f"{backend} passes are not paired with the reference subnet (protocol.reference)"
    )
    return {"reference_now_ms": None, "reference_drift": None, "reference_check": f"none: {why}"}


def get_backend(
    name: str, protocol: Protocol | None = None, *, lut_dir: str | Path | None = None
) -> Backend:
    """A ready backend by name; `BackendUnavailable` says why one cannot run here."""
    if name not in BACKENDS:
        raise ParameterError(
            "backend", f"names an unknown backend {name!r}; known backends: {', '.join(BACKENDS)}"
        )
    cls = BACKENDS[name]
    reason = cls.unavailable_reason()
    if reason is not None:
        raise BackendUnavailable(f"backend '{name}' cannot run here: {reason}")
    protocol = protocol or Protocol()
    if cls is LookupTableBackend:
        return LookupTableBackend(protocol, lut_dir=lut_dir)
    if lut_dir is not None:
        raise ParameterError("lut_dir", f"only applies to the 'lut' backend, not '{name}'")
    return cls(protocol)
