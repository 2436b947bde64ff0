"""What several pipelines share: the Ray settings (``params:ray``) and the one rule for
which datasets a pipeline uses."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any

from ofa_latency_kedro.errors import ParameterError
from ofa_latency_kedro.settings_dict import from_settings


@dataclass(frozen=True)
class RaySettings:
    """``params:ray``: ``address`` None starts a local Ray for the run; ``auto``,
    ``host:port`` or ``ray://host:port`` joins an existing cluster."""

    address: str | None = None

    @classmethod
    def from_dict(cls, values: Any) -> RaySettings:
        return from_settings(cls, values, "ray")


def names_or_all(value: str | Sequence[str]) -> str | tuple[str, ...]:
    """``all``, or the names given (one name or a list of them)."""
    if isinstance(value, str):
        return value if value == "all" else (value,)
    return tuple(value)


def select_datasets(
    available: Iterable[str], wanted: str | Sequence[str], parameter: str, where: str
) -> list[str]:
    """The datasets a pipeline uses: every one ``available`` for ``all``, else those named
    by ``parameter``, in the order named; a name that ``where`` (e.g. "the model input")
    does not hold is refused, with what it holds."""
    available = list(available)
    wanted = names_or_all(wanted)
    if wanted == "all":
        return available
    missing = [name for name in wanted if name not in available]
    if missing:
        raise ParameterError(
            parameter,
            f"names {', '.join(missing)}, which {where} does not hold (it holds "
            f"{', '.join(sorted(available)) or 'nothing'})",
        )
    return list(dict.fromkeys(wanted))
