"""The project's own errors: one base class, so ``except OfaLatencyError`` catches every
failure this package reports on purpose (and nothing else).

Each error names what is at fault: the file, row and field of a table, the parameter of a
setting, the predictor and what it was asked. The classes also derive from the built-in type
their failure has always had (``ValueError`` for bad input, ``RuntimeError`` for what cannot
run here), so code written against those keeps working.
"""

from __future__ import annotations

from pathlib import Path


class OfaLatencyError(Exception):
    """Base class of every error this package raises about its inputs or its environment."""


class ParameterError(OfaLatencyError, ValueError):
    """A parameter or argument that is unknown or out of range; ``parameter`` is its dotted
    name (``sampling.num_subnets``), ``problem`` what is wrong with it."""

    def __init__(self, parameter: str, problem: str) -> None:
        super().__init__(f"parameter '{parameter}' {problem}")
        self.parameter = parameter
        self.problem = problem

    def __reduce__(self) -> tuple[type, tuple[str, str]]:
        return type(self), (self.parameter, self.problem)

    def within(self, prefix: str) -> ParameterError:
        """The same error with its parameter named inside ``prefix`` (``training.config``)."""
        return ParameterError(
            f"{prefix}.{self.parameter}" if prefix else self.parameter, self.problem
        )


class LatencyDataError(OfaLatencyError, ValueError):
    """A latency file, a row of one, or its sidecar that cannot be used; names file, line and
    field."""

    def __init__(
        self,
        message: str,
        *,
        path: Path | str | None = None,
        line: int | None = None,
        field: str | None = None,
    ) -> None:
        where = ", ".join(
            part
            for part in (
                str(path) if path is not None else None,
                f"line {line}" if line is not None else None,
                f"field '{field}'" if field is not None else None,
            )
            if part
        )
        super().__init__(f"{where}: {message}" if where else message)
        self.path, self.line, self.field = path, line, field
