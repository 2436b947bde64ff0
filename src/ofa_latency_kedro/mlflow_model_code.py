"""The code of every logged latency predictor (MLflow's "models from code", instead of a
pickled object): `ofa_latency_kedro.mlflow_models.PredictorModel`, which loads the checkpoint
logged with the model. MLflow runs this file when it loads such a model; imported elsewhere it
only sets MLflow's model-from-code slot, which nothing else reads."""

import mlflow

from ofa_latency_kedro.mlflow_models import PredictorModel

mlflow.models.set_model(PredictorModel())
