"""azureml.exceptions: the cloud SDK's exception classes, raised by runyard's
compatibility module where the cloud raises them (docs/sdk.md):

- ComputeTargetException: ComputeTarget(ws, name) of a target that does not
  exist (notebooks catch it to take their "create it" branch);
- UserErrorException: an unknown dataset, environment or run, a bad value;
- ActivityFailedException: wait_for_completion of a run that failed;
- WebserviceException: a deployment that failed, a model that is not there
  ("ModelNotFound");
- ServiceException: runyardd refused a request or cannot be reached
  (DaemonError, with .code, is one).

Every one is an AzureMLException (runyard's RunyardError)."""

from runyard._models import WebserviceException
from runyard._notebook import ActivityFailedException
from runyard._run import ComputeTargetException, DaemonError, ServiceException
from runyard._run import RunyardError as AzureMLException
from runyard._run import UserErrorException


class AuthenticationException(AzureMLException):
    """Never raised by runyard: the local daemon needs no login."""


class ProjectSystemException(AzureMLException):
    """A workspace or project that cannot be found or read."""


class ExperimentExecutionException(AzureMLException):
    """A run that cannot be submitted as configured."""


class RunEnvironmentException(AzureMLException):
    """Something about a run's environment that cannot be done here."""


class SnapshotException(AzureMLException):
    """A snapshot that cannot be taken or restored."""


class TrainingException(AzureMLException):
    """A training configuration that cannot be run."""


__all__ = ["AzureMLException", "UserErrorException", "ActivityFailedException",
           "WebserviceException", "ServiceException", "ComputeTargetException",
           "DaemonError", "AuthenticationException", "ProjectSystemException",
           "ExperimentExecutionException", "RunEnvironmentException", "SnapshotException",
           "TrainingException"]
