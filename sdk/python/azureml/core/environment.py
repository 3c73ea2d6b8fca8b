"""azureml.core.environment: named, versioned environments of the local
runyardd (docs/environments.md, docs/sdk.md)."""

from runyard._notebook import DockerSection, Environment, PythonSection

__all__ = ["Environment", "PythonSection", "DockerSection"]
