"""Settings dataclasses built from parameter dicts: unknown keys refused by name (with the
closest known one), values checked against the field's type, nested settings built in turn.

A settings class is a frozen dataclass whose fields are the keys of one ``params:`` section
(or of a function's keyword arguments); its defaults are the only defaults of those keys.
Its ``__post_init__`` checks ranges and raises `ParameterError` naming the field; errors of
nested settings name the whole dotted path (``training.config.lr``).
"""

from __future__ import annotations

import dataclasses
import difflib
import types
import typing
from collections.abc import Mapping, Sequence
from typing import Any, Literal, TypeVar, Union

from ofa_latency_kedro.errors import ParameterError

T = TypeVar("T")


class UnknownParameterError(ParameterError):
    """A key that no field of the settings has; says the closest known one."""

    def __init__(self, parameter: str, known: Sequence[str]) -> None:
        name = parameter.rpartition(".")[2]
        close = difflib.get_close_matches(name, known, n=1, cutoff=0.6)
        hint = f"; did you mean '{close[0]}'?" if close else ""
        super().__init__(parameter, f"is unknown{hint} (known: {', '.join(sorted(known))})")
        self.args = (f"unknown parameter '{parameter}'{hint} (known: {', '.join(sorted(known))})",)
        self.known = tuple(known)

    def __reduce__(self) -> tuple[type, tuple[str, tuple[str, ...]]]:
        return type(self), (self.parameter, self.known)

    def within(self, prefix: str) -> ParameterError:
        return UnknownParameterError(
            f"{prefix}.{self.parameter}" if prefix else self.parameter, self.known
        )

    def __str__(self) -> str:
        return self.args[0]


def settings_fields(cls: type) -> dict[str, dataclasses.Field]:
    return {f.name: f for f in dataclasses.fields(cls) if f.init}


def from_settings(cls: type[T], values: Mapping[str, Any] | T | None, what: str = "") -> T:
    """``cls(**values)`` after checking that every key is a field and every value has the
    field's type; ``what`` is the dotted name of the section (``sampling``), used in errors."""
    if isinstance(values, cls):
        return values
    if values is None:
        values = {}
    if not isinstance(values, Mapping):
        raise ParameterError(what or cls.__name__, f"must be a mapping of settings, got {values!r}")
    known = settings_fields(cls)
    hints = typing.get_type_hints(cls)
    arguments = {}
    for key, value in values.items():
        name = f"{what}.{key}" if what else str(key)
        if key not in known:
            raise UnknownParameterError(name, list(known))
        arguments[key] = _coerce(value, hints[key], name)
    required = [
        name
        for name, f in known.items()
        if f.default is dataclasses.MISSING
        and f.default_factory is dataclasses.MISSING
        and name not in arguments
    ]
    if required:
        raise ParameterError(f"{what}.{required[0]}" if what else required[0], "must be given")
    try:
        return cls(**arguments)
    except ParameterError as exc:
        raise exc.within(what) from None


def _scalar(value: Any, hint: type) -> tuple[bool, Any]:
    """(True, value as ``hint``) when ``value`` is one; bools are never numbers, and an
    integral float is an integer (what YAML and ``--params`` give for ``5.0``)."""
    if hint is bool:
        return isinstance(value, bool), value
    if isinstance(value, bool):
        return False, value
    if hint is int:
        if isinstance(value, float) and value.is_integer():
            return True, int(value)
        return isinstance(value, int), value
    if hint is float:
        return isinstance(value, (int, float)), float(value) if isinstance(
            value, (int, float)
        ) else value
    return isinstance(value, hint), value


def _union(value: Any, hint: Any, name: str) -> Any:
    arms = typing.get_args(hint)
    if value is None and type(None) in arms:
        return None
    for arm in arms:
        if arm is type(None):
            continue
        try:
            return _coerce(value, arm, name)
        except ParameterError as exc:
            if isinstance(exc, UnknownParameterError) or (
                dataclasses.is_dataclass(arm) and isinstance(value, Mapping)
            ):
                raise
    raise ParameterError(name, f"must be {describe(hint)}, got {value!r}")


def _coerce(value: Any, hint: Any, name: str) -> Any:
    """``value`` as the annotation ``hint`` wants it, or a `ParameterError` naming ``name``."""
    origin = typing.get_origin(hint)
    if hint is Any:
        return value
    if origin in (Union, types.UnionType):
        return _union(value, hint, name)
    if dataclasses.is_dataclass(hint):
        return from_settings(hint, value, name)
    ok = False
    if origin is Literal:
        ok = value in typing.get_args(hint) and type(value) is not bool
    elif origin in (tuple, list, Sequence) or hint in (tuple, list):
        if not isinstance(value, (str, bytes, Mapping)) and isinstance(value, Sequence):
            item = (typing.get_args(hint) or (Any,))[0]
            return tuple(_coerce(v, item, f"{name}[{i}]") for i, v in enumerate(value))
    elif origin in (dict, Mapping) or hint in (dict, Mapping):
        if isinstance(value, Mapping):
            return dict(value)
    elif isinstance(hint, type):
        ok, value = _scalar(value, hint)
    if ok:
        return value
    raise ParameterError(name, f"must be {describe(hint)}, got {value!r}")


def describe(hint: Any) -> str:
    """The annotation in words: ``an integer``, ``one of 'raise', 'skip'``, ..."""
    origin = typing.get_origin(hint)
    if origin in (Union, types.UnionType):
        return " or ".join(describe(arm) for arm in typing.get_args(hint))
    if origin is Literal:
        return "one of " + ", ".join(repr(v) for v in typing.get_args(hint))
    if origin in (tuple, list, Sequence) or hint in (tuple, list):
        arguments = typing.get_args(hint)
        return f"a list of {_plural(describe(arguments[0]))}" if arguments else "a list"
    if origin in (dict, Mapping) or hint in (dict, Mapping):
        return "a mapping"
    return {
        bool: "true or false",
        int: "an integer",
        float: "a number",
        str: "a text",
        type(None): "null",
    }.get(hint, getattr(hint, "__name__", str(hint)))


def _plural(text: str) -> str:
    for article in ("an ", "a "):
        if text.startswith(article):
            return text[len(article) :] + "s"
    return text
