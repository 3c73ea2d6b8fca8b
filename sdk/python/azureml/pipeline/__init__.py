"""azureml.pipeline: not supported by runyard (docs/sdk.md)."""
