"""The project's own errors: one base class, so ``except OfaLatencyError`` catches every
failure this package reports on purpose (and nothing else).

Each error names what is at fault: the file, row and field of a table, the parameter of a
setting, the predictor and what it was asked. The classes also derive from the built-in type
their failure has always had (``ValueError`` for bad input, ``RuntimeError`` for what cannot
run here), so code written against those keeps working.
"""

from __future__ import annotations


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
