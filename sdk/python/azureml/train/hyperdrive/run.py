"""azureml.train.hyperdrive.run: a submitted sweep and the goal of its metric."""

from runyard._hyperdrive import HyperDriveRun, PrimaryMetricGoal

__all__ = ["HyperDriveRun", "PrimaryMetricGoal"]
