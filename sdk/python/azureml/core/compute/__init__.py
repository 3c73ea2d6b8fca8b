"""azureml.core.compute: the daemon's compute targets ('local' and clusters)."""

from runyard._notebook import ComputeTarget

__all__ = ["ComputeTarget"]
