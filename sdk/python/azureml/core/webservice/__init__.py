"""azureml.core.webservice: services of deployed models, served by runyardd on
127.0.0.1 (AciWebservice and LocalWebservice configurations are both local)."""

from runyard._models import AciWebservice, LocalWebservice, Webservice
from runyard._unsupported import unsupported

AksWebservice = unsupported("AksWebservice", "there is no Kubernetes cluster here",
                            "deploy with LocalWebservice.deploy_configuration() or "
                            "AciWebservice.deploy_configuration(), both served locally")

__all__ = ["Webservice", "LocalWebservice", "AciWebservice", "AksWebservice"]
