"""azureml.train.hyperdrive: hyperparameter sweeps against the local runyardd
(docs/sdk.md "HyperDrive").

    from azureml.train.hyperdrive import (HyperDriveConfig, RandomParameterSampling,
                                          PrimaryMetricGoal, BanditPolicy, choice)
    sampling = RandomParameterSampling({"--kernel": choice('linear', 'rbf'),
                                        "--penalty": choice(0.5, 1, 1.5)})
    config = HyperDriveConfig(run_config=src, hyperparameter_sampling=sampling,
                              primary_metric_name='Accuracy',
                              primary_metric_goal=PrimaryMetricGoal.MAXIMIZE,
                              max_total_runs=12, max_concurrent_runs=4)
    hyperdrive_run = experiment.submit(config)
"""

from azureml.train.hyperdrive.parameter_expressions import (choice, lognormal, loguniform,
                                                            normal, qlognormal, qloguniform,
                                                            qnormal, quniform, randint, uniform)
from azureml.train.hyperdrive.policy import (BanditPolicy, EarlyTerminationPolicy,
                                             MedianStoppingPolicy, NoTerminationPolicy,
                                             TruncationSelectionPolicy)
from azureml.train.hyperdrive.run import HyperDriveRun, PrimaryMetricGoal
from azureml.train.hyperdrive.runconfig import HyperDriveConfig, HyperDriveRunConfig
from azureml.train.hyperdrive.sampling import (BayesianParameterSampling,
                                               GridParameterSampling, HyperParameterSampling,
                                               RandomParameterSampling)

__all__ = ["HyperDriveConfig", "HyperDriveRunConfig", "HyperDriveRun", "PrimaryMetricGoal",
           "HyperParameterSampling", "RandomParameterSampling", "GridParameterSampling",
           "BayesianParameterSampling", "EarlyTerminationPolicy", "BanditPolicy",
           "MedianStoppingPolicy", "TruncationSelectionPolicy", "NoTerminationPolicy",
           "choice", "randint", "uniform", "loguniform", "normal", "lognormal", "quniform",
           "qloguniform", "qnormal", "qlognormal"]
