"""Building settings dataclasses from parameter dicts, refusing misspelt keys by name."""

from __future__ import annotations

from dataclasses import fields
from typing import Any, TypeVar

T = TypeVar("T")


def from_settings(cls: type[T], values: dict[str, Any] | None, what: str) -> T:
    """``cls(**values)``, after checking every key is one of its fields (``what`` names the
    settings in the error, e.g. "protocol")."""
    values = dict(values or {})
    known = {f.name for f in fields(cls) if f.init}  # type: ignore[arg-type]
    unknown = sorted(set(values) - known)
    if unknown:
        raise ValueError(
            f"unknown {what} field(s) {', '.join(unknown)}; known: {', '.join(sorted(known))}"
        )
    return cls(**values)
