"""azureml.train.hyperdrive.policy: early termination of a sweep's children
(applied by runyardd)."""

from runyard._hyperdrive import (BanditPolicy, EarlyTerminationPolicy, MedianStoppingPolicy,
                                 NoTerminationPolicy, TruncationSelectionPolicy)

__all__ = ["EarlyTerminationPolicy", "BanditPolicy", "MedianStoppingPolicy",
           "TruncationSelectionPolicy", "NoTerminationPolicy"]
