"""azureml.core.datastore: datastores as local directories (docs/sdk.md)."""

from runyard._data import DataReference, Datastore

__all__ = ["Datastore", "DataReference"]
