"""azureml.exceptions: the errors runyard's compatibility module raises."""

from runyard._models import WebserviceException
from runyard._run import RunyardError as AzureMLException

__all__ = ["AzureMLException", "WebserviceException"]
