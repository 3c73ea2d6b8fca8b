"""azureml.core.conda_dependencies: CondaDependencies (docs/sdk.md)."""

from runyard._conda import CondaDependencies

__all__ = ["CondaDependencies"]
