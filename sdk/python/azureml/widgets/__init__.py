"""azureml.widgets: RunDetails(run).show() prints a text table of the run (a
sweep's children with status and primary metric) instead of drawing a
Jupyter widget; it works outside Jupyter too."""

from runyard._hyperdrive import RunDetails

__all__ = ["RunDetails"]
