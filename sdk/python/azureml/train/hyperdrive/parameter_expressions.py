"""azureml.train.hyperdrive.parameter_expressions: the distributions of a search
space. Each returns the cloud SDK's list (["choice", [[...]]]); str() of it is
the text runyardd's sweep.submit takes, "choice('linear', 'rbf')"."""

from runyard._hyperdrive import (choice, lognormal, loguniform, normal, qlognormal, qloguniform,
                                 qnormal, quniform, randint, uniform)

__all__ = ["choice", "randint", "uniform", "loguniform", "normal", "lognormal", "quniform",
           "qloguniform", "qnormal", "qlognormal"]
