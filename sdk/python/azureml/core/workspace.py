"""azureml.core.workspace: the local runyardd stands in for a cloud workspace."""

from runyard._models import Workspace

__all__ = ["Workspace"]
