"""azureml.data: the dataset classes (docs/sdk.md)."""

from runyard._data import DataReference, TabularDataset
from azureml.core.dataset import FileDataset

__all__ = ["TabularDataset", "FileDataset", "DataReference"]
