"""azureml.data.data_reference: datastore.path(...) as a run's input."""

from runyard._data import DataReference

__all__ = ["DataReference"]
