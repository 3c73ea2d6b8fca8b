"""azureml.core.compute_target: ComputeTargetException, as the cloud's."""

from runyard._run import ComputeTargetException
from runyard._notebook import ComputeTarget

__all__ = ["ComputeTargetException", "ComputeTarget"]
