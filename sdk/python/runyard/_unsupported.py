"""Classes of the v1 SDK that runyard does not offer: making one, or calling
any of its class methods (Pipeline.get, AksWebservice.deploy_configuration),
raises NotImplementedError naming the feature and what to use instead."""


class _Meta(type):
    def __getattr__(cls, attr):
        if attr.startswith("__"):
            raise AttributeError(attr)

        def refuse(*args, **kwargs):
            cls._refuse("%s.%s" % (cls.__name__, attr))
        return refuse


def unsupported(name, what, instead):
    def _refuse(feature):
        raise NotImplementedError("%s is not supported by runyard (%s)%s"
                                  % (feature, what, "; " + instead if instead else ""))

    def __init__(self, *args, **kwargs):
        _refuse(name)

    return _Meta(name, (object,), {"__init__": __init__, "__doc__": "Not supported: %s." % what,
                                   "_refuse": staticmethod(_refuse)})
