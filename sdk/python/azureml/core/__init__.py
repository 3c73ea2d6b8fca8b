"""runyard's compatibility module for scripts written against azureml.core.

    from azureml.core import Run          # or: from azureml.core.run import Run
    run = Run.get_context()
    run.log("Accuracy", acc)

Inside a runyard run, Run.get_context() returns a live run whose metrics,
tags, properties and files land in the run's history; anywhere else it
returns an offline run that prints what it is given, as the original does.
Models and services: Model.register, run.register_model, Model.deploy and
the Webservice it returns work against the local runyardd, which stands in
for the workspace (Workspace.from_config()). Experiments and environments
are runyard's CLI.
"""

from azureml.core.model import InferenceConfig, Model
from azureml.core.resource_configuration import ResourceConfiguration
from azureml.core.run import Run
from azureml.core.workspace import Workspace

__all__ = ["Run", "Model", "InferenceConfig", "ResourceConfiguration", "Workspace"]
