"""azureml.core.runconfig: the run configuration a ScriptRunConfig carries."""

from runyard._notebook import DockerSection as DockerConfiguration
from runyard._notebook import RunConfiguration

__all__ = ["RunConfiguration", "DockerConfiguration"]
