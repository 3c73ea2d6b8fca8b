"""azureml.train: runyard's stand-in for the cloud's training package; it has
hyperparameter sweeps (azureml.train.hyperdrive, docs/sdk.md)."""
