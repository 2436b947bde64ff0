"""Protocol validation and the statistics of timed passes."""

from __future__ import annotations

import numpy as np
import pytest

from ofa_latency_kedro.errors import ParameterError
from ofa_latency_kedro.measurement.protocol import (
    Protocol,
    Timing,
    available_cpus,
    relative_differences,
    summarize,
)


def test_defaults_and_resolution():
    protocol = Protocol()
    assert protocol.timed_runs == 40
    assert protocol.to_dict()["threads"] == 1
    assert Protocol(threads=None).resolved_threads == available_cpus()


@pytest.mark.parametrize(
    ("values", "fragment"),
    [
        ({"batch_size": 0}, "'protocol.batch_size' must be an integer >= 1"),
        ({"rounds": 1.5}, "'protocol.rounds' must be an integer, got 1.5"),
        ({"warmup_runs": -1}, "'protocol.warmup_runs' must be an integer >= 0"),
        ({"threads": 0}, "'protocol.threads' must be a positive integer or null"),
        ({"statistic": "p99"}, "'protocol.statistic' must be one of 'median', 'min', 'mean'"),
        ({"reference": "yes"}, "'protocol.reference' must be true or false or null"),
        ({"reference_ms": -3.0}, "'protocol.reference_ms' must be a positive number"),
        ({"timed_runs": 30}, "unknown parameter 'protocol.timed_runs'"),
    ],
)
def test_bad_protocols_name_the_field(values, fragment):
    with pytest.raises(ParameterError) as info:
        Protocol.from_dict(values)
    assert fragment in str(info.value)


def test_a_protocol_built_directly_is_checked_too():
    with pytest.raises(ParameterError, match="'statistic' must be one of median, min, mean"):
        Protocol(statistic="p99")
    with pytest.raises(ParameterError, match="'sampling.protocol.rounds' must be an integer >= 1"):
        Protocol.from_dict({"rounds": 0}, "sampling.protocol")


def test_timing_statistics_and_spread():
    samples = np.array([[10.0, 11.0, 12.0], [10.5, 30.0, 10.2]])
    timing = Timing.from_samples(samples, "median")
    assert timing.latency == pytest.approx(10.75)
    assert timing.runs == 6
    assert timing.p10 <= timing.latency <= timing.p90
    assert Timing.from_samples(samples, "min").latency == 10.0
    assert Timing.from_samples(samples, "mean").latency == pytest.approx(samples.mean())
    assert summarize(samples, "median") == pytest.approx(10.75)


def test_reference_pairs_cancel_a_slowdown_common_to_both():
    true_latency, reference_ms = 8.0, 4.0
    slowdown = np.array([[1.0, 1.3, 1.0], [1.6, 1.0, 1.2]])  # the machine, pass by pass
    subnet = true_latency * slowdown
    reference = reference_ms * slowdown
    plain = Timing.from_samples(subnet, "median")
    paired = Timing.from_samples(subnet, "median", reference, reference_ms)
    assert plain.latency > true_latency
    assert paired.latency == pytest.approx(true_latency)
    assert paired.p10 == pytest.approx(true_latency) and paired.p90 == pytest.approx(true_latency)


@pytest.mark.parametrize(
    "samples", [np.array([]), np.array([1.0, np.nan]), np.array([0.0, 1.0]), np.array([np.inf])]
)
def test_bad_samples_are_refused(samples):
    with pytest.raises(ValueError, match="positive and finite"):
        Timing.from_samples(samples)


def test_reference_needs_its_scale_and_matching_shape():
    with pytest.raises(ValueError, match="need reference_ms"):
        Timing.from_samples(np.ones((2, 2)), "median", np.ones((2, 2)))
    with pytest.raises(ValueError, match="do not pair"):
        Timing.from_samples(np.ones((2, 2)), "median", np.ones((2, 3)), 1.0)


def test_exact_timing_and_relative_differences():
    assert Timing.exact(3.5) == Timing(3.5, 3.5, 3.5, 1)
    assert relative_differences([10.0, 20.0], [11.0, 19.0]).tolist() == pytest.approx([0.1, 0.05])
