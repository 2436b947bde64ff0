"""Concurrent `kedro run`s create the local MLflow store one at a time: the project's wrapper
hook holds a lock beside the SQLite file around every ``after_context_created`` hook,
kedro-mlflow's included whatever the order of registration (the runs themselves:
tests/pipelines/sampling/test_concurrency.py)."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
from kedro.framework.hooks import hook_impl
from kedro.framework.hooks.manager import _create_hook_manager

from ofa_latency_kedro.atomic import ExclusiveLock
from ofa_latency_kedro.hooks import MlflowStoreLockHook, _sqlite_store


class FakeConfigLoader:
    def __init__(self, mlflow_conf: dict | None) -> None:
        self.config_patterns: dict[str, list[str]] = {}
        self._conf = mlflow_conf

    def __getitem__(self, key: str) -> dict:
        assert key in self.config_patterns, "read before its pattern was registered"
        return self._conf or {}


class FakeContext:
    def __init__(self, uri: str | None) -> None:
        server = {} if uri is None else {"server": {"mlflow_tracking_uri": uri}}
        self.config_loader = FakeConfigLoader(server)


class PluginLikeKedroMlflow:
    """Registered after the project's hooks, as Kedro registers plugins: called first."""

    def __init__(self, lock: Path) -> None:
        self.lock = lock
        self.holder = None

    @hook_impl
    def after_context_created(self, context) -> None:
        lock = ExclusiveLock(self.lock)
        self.holder = lock.try_acquire()
        lock.release()  # (when it was free to take)


def test_the_store_lock_is_held_around_a_plugins_hook(tmp_path: Path):
    store = tmp_path / "mlflow.db"
    plugin = PluginLikeKedroMlflow(tmp_path / "mlflow.db.lock")
    hooks = _create_hook_manager()
    hooks.register(MlflowStoreLockHook())
    hooks.register(plugin)
    hooks.hook.after_context_created(context=FakeContext(f"sqlite:///{store}"))
    assert plugin.holder is not None and plugin.holder.pid == os.getpid()
    assert not (tmp_path / "mlflow.db.lock").exists()  # released and removed after


def test_an_error_in_the_wrapped_hooks_releases_the_lock(tmp_path: Path):
    class Failing:
        @hook_impl
        def after_context_created(self, context) -> None:
            raise RuntimeError("store creation failed")

    hooks = _create_hook_manager()
    hooks.register(MlflowStoreLockHook())
    hooks.register(Failing())
    with pytest.raises(RuntimeError, match="store creation failed"):
        hooks.hook.after_context_created(context=FakeContext(f"sqlite:///{tmp_path}/m.db"))
    assert ExclusiveLock(tmp_path / "m.db.lock").try_acquire() is None


@pytest.mark.parametrize(
    ("uri", "store"),
    [
        ("sqlite:///mlflow.db", "{cwd}/mlflow.db"),
        ("sqlite:////data/runs/mlflow.db", "/data/runs/mlflow.db"),
        ("sqlite:///mlflow.db?timeout=30", "{cwd}/mlflow.db"),
        ("http://127.0.0.1:5000", None),
        ("sqlite:///:memory:", None),
        ("mlruns", None),
    ],
)
def test_the_lock_is_taken_for_a_local_sqlite_store_only(
    uri: str, store: str | None, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
):
    monkeypatch.chdir(tmp_path)
    found = _sqlite_store(FakeContext(uri))
    assert found == (None if store is None else Path(store.format(cwd=tmp_path)))


def test_without_a_uri_in_mlflow_yml_the_environments_store_is_locked(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
):
    monkeypatch.setenv("MLFLOW_TRACKING_URI", f"sqlite:///{tmp_path}/env.db")
    assert _sqlite_store(FakeContext(None)) == tmp_path / "env.db"
