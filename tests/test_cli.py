"""The project's ``kedro run``: Kedro's command, with ``--params`` that takes lists."""

from __future__ import annotations

import click
import pytest
from kedro.framework.cli.project import run as kedro_run

from ofa_latency_kedro.cli import cli, split_params, split_top_level


def test_commas_inside_brackets_and_quotes_do_not_split():
    text = "nas.constraints_ms=[12,18], nas.seed=1,a='x,y',b={c: 1, d: [2,3]}"
    assert split_top_level(text) == [
        "nas.constraints_ms=[12,18]",
        "nas.seed=1",
        "a='x,y'",
        "b={c: 1, d: [2,3]}",
    ]


def test_params_become_nested_values():
    values = split_params(None, None, "nas.constraints_ms=[12,18],nas.verify=false,x.y=0.5")
    assert values == {"nas": {"constraints_ms": [12, 18], "verify": False}, "x": {"y": 0.5}}
    assert split_params(None, None, "") == {}


@pytest.mark.parametrize("bad", ["nas.seed", "=3"])
def test_an_item_without_key_and_value_is_named(bad: str):
    with pytest.raises(click.BadParameter, match="must be key=value"):
        split_params(None, None, f"nas.verify=true,{bad}")


def test_run_is_kedros_own_command_otherwise():
    run = cli.commands["run"]
    assert run.callback is kedro_run.callback
    assert [p.name for p in run.params] == [p.name for p in kedro_run.params]
    ours = {p.name: p.callback for p in run.params}
    kedros = {p.name: p.callback for p in kedro_run.params}
    assert ours["params"] is split_params and kedros["params"] is not split_params
    assert all(ours[name] is kedros[name] for name in kedros if name != "params")
