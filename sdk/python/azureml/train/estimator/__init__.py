"""azureml.train.estimator: the cloud's estimators (deprecated there too)
are not supported; making one raises NotImplementedError."""

from runyard._unsupported import unsupported

Estimator = unsupported("Estimator", "the cloud's estimators are not offered",
                        "use a ScriptRunConfig with an Environment")

__all__ = ["Estimator"]
