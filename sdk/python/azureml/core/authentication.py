"""azureml.core.authentication: accepted and ignored. The local daemon
needs no login: its socket is the user's own (mode 0600, peer uid checked)."""


class AbstractAuthentication:
    """Any authentication object: kept, never used."""

    def __init__(self, *args, **kwargs):
        self.args = args
        self.kwargs = kwargs

    def get_authentication_header(self):
        return {}


class InteractiveLoginAuthentication(AbstractAuthentication):
    pass


class ServicePrincipalAuthentication(AbstractAuthentication):
    pass


class MsiAuthentication(AbstractAuthentication):
    pass


class AzureCliAuthentication(AbstractAuthentication):
    pass


__all__ = ["AbstractAuthentication", "InteractiveLoginAuthentication",
           "ServicePrincipalAuthentication", "MsiAuthentication", "AzureCliAuthentication"]
