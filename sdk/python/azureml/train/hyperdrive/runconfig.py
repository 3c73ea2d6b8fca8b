"""azureml.train.hyperdrive.runconfig: what a sweep runs and how it searches."""

from runyard._hyperdrive import HyperDriveConfig, HyperDriveRunConfig

__all__ = ["HyperDriveConfig", "HyperDriveRunConfig"]
