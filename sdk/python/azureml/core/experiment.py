"""azureml.core.experiment: a name that groups runs; submit() starts one."""

from runyard._notebook import Experiment

__all__ = ["Experiment"]
