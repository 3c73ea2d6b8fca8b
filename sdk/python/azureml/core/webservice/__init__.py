"""azureml.core.webservice: services of deployed models, served by runyardd on
127.0.0.1 (AciWebservice and LocalWebservice configurations are both local)."""

from runyard._models import AciWebservice, LocalWebservice, Webservice

__all__ = ["Webservice", "LocalWebservice", "AciWebservice"]
