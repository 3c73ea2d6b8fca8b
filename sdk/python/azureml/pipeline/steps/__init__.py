"""azureml.pipeline.steps: not supported; each class raises NotImplementedError."""

from runyard._unsupported import unsupported

_WHY = "runyard has no pipelines"
_INSTEAD = "submit the step's script with a ScriptRunConfig"
PythonScriptStep = unsupported("PythonScriptStep", _WHY, _INSTEAD)
ParallelRunStep = unsupported("ParallelRunStep", _WHY, _INSTEAD)
ParallelRunConfig = unsupported("ParallelRunConfig", _WHY, _INSTEAD)
HyperDriveStep = unsupported("HyperDriveStep", _WHY, "submit the HyperDriveConfig")
AutoMLStep = unsupported("AutoMLStep", _WHY, _INSTEAD)
DataTransferStep = unsupported("DataTransferStep", _WHY, _INSTEAD)

__all__ = ["PythonScriptStep", "ParallelRunStep", "ParallelRunConfig", "HyperDriveStep",
           "AutoMLStep", "DataTransferStep"]
