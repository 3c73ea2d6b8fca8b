"""azureml.core.compute: the daemon's compute targets ('local', clusters,
and AmlCompute targets made by ComputeTarget.create, which run locally)."""

from runyard._notebook import AmlCompute, AmlComputeProvisioningConfiguration, ComputeTarget


class _NotHere:
    """A compute type runyard does not offer: using it raises
    NotImplementedError naming it."""

    _what = "this compute type"

    def __init__(self, *args, **kwargs):
        raise NotImplementedError("%s is not supported by runyard (a local daemon); use "
                                  "ComputeTarget.create(ws, name, AmlCompute."
                                  "provisioning_configuration(...)) or 'local'" % self._what)

    @classmethod
    def provisioning_configuration(cls, *args, **kwargs):
        cls()

    @classmethod
    def attach_configuration(cls, *args, **kwargs):
        cls()


class ComputeInstance(_NotHere):
    _what = "ComputeInstance"


class AksCompute(_NotHere):
    _what = "AksCompute"


class RemoteCompute(_NotHere):
    _what = "RemoteCompute"


class DatabricksCompute(_NotHere):
    _what = "DatabricksCompute"


__all__ = ["ComputeTarget", "AmlCompute", "AmlComputeProvisioningConfiguration",
           "ComputeInstance", "AksCompute", "RemoteCompute", "DatabricksCompute"]
