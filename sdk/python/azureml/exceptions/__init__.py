"""azureml.exceptions: the errors runyard's compatibility module raises."""

from runyard._models import WebserviceException
from runyard._notebook import ActivityFailedException
from runyard._run import DaemonError
from runyard._run import RunyardError as AzureMLException

UserErrorException = AzureMLException

__all__ = ["AzureMLException", "UserErrorException", "ActivityFailedException",
           "WebserviceException", "DaemonError"]
