"""azureml.train.sklearn: the SKLearn estimator is not supported."""

from runyard._unsupported import unsupported

SKLearn = unsupported("SKLearn", "the cloud's estimators are not offered",
                      "use a ScriptRunConfig with Environment.get(ws, 'AzureML-Tutorial')")

__all__ = ["SKLearn"]
