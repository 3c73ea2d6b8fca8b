"""runyard's compatibility module for code written against azureml.core.

In a notebook, against the local runyardd (docs/sdk.md):

    from azureml.core import Workspace, Environment, ScriptRunConfig, Experiment
    ws = Workspace.from_config()
    env = Environment.from_conda_specification("sklearn-env", "conda_dependencies.yml")
    src = ScriptRunConfig(source_directory=".", script="train_iris.py", environment=env)
    run = Experiment(ws, "Tutorial-TrainIRIS").submit(src)
    run.wait_for_completion(show_output=True)

Inside a run (docs/tracking.md):

    from azureml.core import Run          # or: from azureml.core.run import Run
    run = Run.get_context()
    run.log("Accuracy", acc)

Inside a runyard run, Run.get_context() returns a live run whose metrics,
tags, properties and files land in the run's history; anywhere else it
returns an offline run that prints what it is given, as the original does.
Models and services (docs/models.md): Model.register, run.register_model,
Model.deploy and the Webservice it returns.
"""

from azureml.core.compute import ComputeTarget
from azureml.core.dataset import Dataset
from azureml.core.environment import Environment
from azureml.core.experiment import Experiment
from azureml.core.model import InferenceConfig, Model
from azureml.core.resource_configuration import ResourceConfiguration
from azureml.core.run import Run
from azureml.core.runconfig import RunConfiguration
from azureml.core.script_run_config import ScriptRunConfig
from azureml.core.workspace import Workspace

__all__ = ["Run", "Model", "InferenceConfig", "ResourceConfiguration", "Workspace",
           "Environment", "Experiment", "ScriptRunConfig", "RunConfiguration",
           "ComputeTarget", "Dataset"]
