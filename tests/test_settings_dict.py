"""Settings built from parameter dicts: unknown keys named with the closest known one,
values checked against the field types, nested settings, one place for each default."""

from __future__ import annotations

import pickle
from dataclasses import dataclass, field
from typing import Literal

import pytest
from hypothesis import given
from hypothesis import strategies as st

from ofa_latency_kedro.errors import OfaLatencyError, ParameterError
from ofa_latency_kedro.settings_dict import UnknownParameterError, from_settings


@dataclass(frozen=True)
class Inner:
    rate: float = 0.5
    name: str | None = None

    def __post_init__(self) -> None:
        if not 0 <= self.rate <= 1:
            raise ParameterError("rate", f"must be between 0 and 1, got {self.rate!r}")


@dataclass(frozen=True)
class Outer:
    count: int = 3
    enabled: bool = True
    mode: Literal["fast", "exact"] = "fast"
    sizes: tuple[int, ...] = (1, 2)
    choice: str | tuple[str, ...] = "all"
    inner: Inner = field(default_factory=Inner)


def test_defaults_and_given_values():
    assert from_settings(Outer, None, "x") == Outer()
    built = from_settings(Outer, {"count": 5, "sizes": [4], "inner": {"rate": 1}}, "x")
    assert built == Outer(count=5, sizes=(4,), inner=Inner(rate=1.0))
    assert isinstance(built.inner.rate, float)
    assert from_settings(Outer, {"choice": ["a", "b"]}, "x").choice == ("a", "b")


@pytest.mark.parametrize(
    ("values", "message"),
    [
        ({"cuont": 1}, "unknown parameter 'x.cuont'; did you mean 'count'?"),
        ({"inner": {"rte": 1}}, "unknown parameter 'x.inner.rte'; did you mean 'rate'?"),
        ({"zzz": 1}, r"unknown parameter 'x.zzz' \(known: choice, count, enabled"),
        ({"count": "abc"}, "parameter 'x.count' must be an integer, got 'abc'"),
        ({"count": True}, "parameter 'x.count' must be an integer, got True"),
        ({"count": 1.5}, "parameter 'x.count' must be an integer, got 1.5"),
        ({"enabled": "yes"}, "parameter 'x.enabled' must be true or false, got 'yes'"),
        ({"mode": "slow"}, "parameter 'x.mode' must be one of 'fast', 'exact', got 'slow'"),
        ({"sizes": [1, "b"]}, r"parameter 'x.sizes\[1\]' must be an integer, got 'b'"),
        ({"sizes": "1,2"}, "parameter 'x.sizes' must be a list of integers"),
        ({"inner": {"rate": 2}}, "parameter 'x.inner.rate' must be between 0 and 1, got 2.0"),
        ({"inner": 3}, "parameter 'x.inner' must be a mapping of settings, got 3"),
    ],
)
def test_bad_values_name_the_parameter(values, message):
    with pytest.raises(ParameterError, match=message) as info:
        from_settings(Outer, values, "x")
    assert isinstance(info.value, OfaLatencyError) and isinstance(info.value, ValueError)


def test_a_required_field_must_be_given():
    @dataclass(frozen=True)
    class Required:
        target: str
        k: int = 1

    with pytest.raises(ParameterError, match="parameter 'y.target' must be given"):
        from_settings(Required, {"k": 2}, "y")


def test_errors_survive_pickling_as_between_processes():
    for error in (ParameterError("a.b", "is bad"), UnknownParameterError("a.c", ["cc", "d"])):
        again = pickle.loads(pickle.dumps(error))
        assert type(again) is type(error) and str(again) == str(error)


@given(st.dictionaries(st.text(min_size=1, max_size=12), st.integers(), max_size=4))
def test_any_unknown_key_is_refused_by_name(values):
    unknown = [key for key in values if key not in Outer.__dataclass_fields__]
    if not unknown:
        return
    with pytest.raises(UnknownParameterError) as info:
        from_settings(Outer, values, "x")
    assert info.value.parameter.startswith("x.")
    assert info.value.parameter.removeprefix("x.") in values
