"""Project settings (Kedro defaults except where noted).

See https://docs.kedro.org/en/stable/configure/configuration_basics/"""

from kedro.config import OmegaConfigLoader

from ofa_latency_kedro.hooks import MlflowRecordsHook, MlflowStoreLockHook, ParametersCheckHook

#: Parameters checked before any node runs; the MLflow records of each run (kedro-mlflow, a
#: plugin, opens the run itself); the lock that lets concurrent runs create the local MLflow
#: store one at a time.
HOOKS = (ParametersCheckHook(), MlflowRecordsHook(), MlflowStoreLockHook())

CONFIG_LOADER_CLASS = OmegaConfigLoader
CONFIG_LOADER_ARGS = {
    "base_env": "base",
    "default_run_env": "local",
    "config_patterns": {
        # hardware.yml (the hardware registry) is read as the parameter `hardware`.
        "parameters": ["parameters*", "parameters*/**", "**/parameters*", "hardware*"],
    },
}
