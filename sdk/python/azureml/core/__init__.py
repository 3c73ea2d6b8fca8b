"""runyard's compatibility module for code written against azureml.core.

In a notebook, against the local runyardd (docs/sdk.md):

    from azureml.core import Workspace, Environment, ScriptRunConfig, Experiment
    ws = Workspace.from_config()
    env = Environment.from_conda_specification("sklearn-env", "conda_dependencies.yml")
    src = ScriptRunConfig(source_directory=".", script="train_iris.py", environment=env)
    run = Experiment(ws, "Tutorial-TrainIRIS").submit(src)
    run.wait_for_completion(show_output=True)

Inside a run (docs/tracking.md):

    from azureml.core import Run          # or: from azureml.core.run import Run  # noqa: E402
    run = Run.get_context()
    run.log("Accuracy", acc)

Inside a runyard run, Run.get_context() returns a live run whose metrics,
tags, properties and files land in the run's history; anywhere else it
returns an offline run that prints what it is given, as the original does.
Models and services (docs/models.md): Model.register, run.register_model,
Model.deploy and the Webservice it returns.
"""

# The SDK version notebooks print: the v1 API this shim follows, and that it
# is runyard's.
VERSION = "1.0.0+runyard.shim"
__version__ = VERSION

from azureml.core.compute import ComputeTarget  # noqa: E402
from azureml.core.dataset import Dataset  # noqa: E402
from azureml.core.datastore import Datastore  # noqa: E402
from azureml.core.environment import Environment  # noqa: E402
from azureml.core.experiment import Experiment  # noqa: E402
from azureml.core.model import InferenceConfig, Model  # noqa: E402
from azureml.core.resource_configuration import ResourceConfiguration  # noqa: E402
from azureml.core.run import Run  # noqa: E402
from azureml.core.runconfig import RunConfiguration  # noqa: E402
from azureml.core.script_run_config import ScriptRunConfig  # noqa: E402
from azureml.core.workspace import Workspace  # noqa: E402

__all__ = ["Run", "Model", "InferenceConfig", "ResourceConfiguration", "Workspace",
           "Environment", "Experiment", "ScriptRunConfig", "RunConfiguration",
           "ComputeTarget", "Dataset", "Datastore", "VERSION"]
