"""Project CLI: Kedro's own ``kedro run``, with ``--params`` that takes lists.

Kedro splits ``--params`` at every comma, so ``--params "nas.constraints_ms=[12,18]"`` fails
before the run starts. This ``run`` is Kedro's command object with one change: commas inside
brackets, braces or quotes do not split (``key=[12,18],other=1`` is two parameters). Kedro
loads this module's ``cli`` group and lets its commands replace the built-in ones."""

from __future__ import annotations

import copy
from typing import Any

import click
from kedro.framework.cli.project import run as kedro_run
from omegaconf import OmegaConf

_OPENING, _CLOSING = "[{(", "]})"


def split_top_level(text: str) -> list[str]:
    """``text`` split at the commas outside brackets, braces, parentheses and quotes."""
    items, current, depth, quote = [], [], 0, ""
    for char in text:
        if quote:
            quote = "" if char == quote else quote
        elif char in "'\"":
            quote = char
        elif char in _OPENING:
            depth += 1
        elif char in _CLOSING:
            depth = max(depth - 1, 0)
        elif char == "," and depth == 0:
            items.append("".join(current))
            current = []
            continue
        current.append(char)
    items.append("".join(current))
    return [item.strip() for item in items if item.strip()]


def split_params(ctx: click.Context, param: click.Parameter, value: Any) -> Any:
    """``key=value`` pairs (dotted keys, YAML-ish values, lists allowed) as a nested dict."""
    if isinstance(value, dict):
        return value
    dot_list = []
    for item in split_top_level(value or ""):
        key, equals, val = item.partition("=")
        if not equals or not key.strip():
            raise click.BadParameter(
                f"item {item!r} must be key=value (e.g. nas.constraints_ms=[12,18])",
                ctx=ctx,
                param=param,
            )
        dot_list.append(f"{key.strip()}={val}")
    return OmegaConf.to_container(OmegaConf.from_dotlist(dot_list))


def _with_list_params(command: click.Command) -> click.Command:
    patched = copy.copy(command)
    patched.params = [copy.copy(p) for p in command.params]
    for option in patched.params:
        if option.name == "params":
            option.callback = split_params
    return patched


@click.group(name="ofa-latency-kedro")
def cli() -> None:
    """Project commands."""


cli.add_command(_with_list_params(kedro_run), name="run")
