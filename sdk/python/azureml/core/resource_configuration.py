"""azureml.core.resource_configuration: what a deployment of a model should get."""

from runyard._models import ResourceConfiguration

__all__ = ["ResourceConfiguration"]
