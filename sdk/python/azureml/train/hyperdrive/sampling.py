"""azureml.train.hyperdrive.sampling: random, grid and bayesian sampling of a
search space (the drawing is runyardd's)."""

from runyard._hyperdrive import (BayesianParameterSampling, GridParameterSampling,
                                 HyperParameterSampling, RandomParameterSampling)

__all__ = ["HyperParameterSampling", "RandomParameterSampling", "GridParameterSampling",
           "BayesianParameterSampling"]
