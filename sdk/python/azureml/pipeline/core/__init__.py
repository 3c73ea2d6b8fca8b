"""azureml.pipeline.core: not supported; each class raises NotImplementedError."""

from runyard._unsupported import unsupported

_WHY = "runyard has no pipelines"
_INSTEAD = "submit each step as a run (runyard submit --after orders runs)"
Pipeline = unsupported("Pipeline", _WHY, _INSTEAD)
PipelineData = unsupported("PipelineData", _WHY, _INSTEAD)
PipelineParameter = unsupported("PipelineParameter", _WHY, _INSTEAD)
PublishedPipeline = unsupported("PublishedPipeline", _WHY, _INSTEAD)
PipelineEndpoint = unsupported("PipelineEndpoint", _WHY, _INSTEAD)
StepSequence = unsupported("StepSequence", _WHY, _INSTEAD)
Schedule = unsupported("Schedule", _WHY, _INSTEAD)
ScheduleRecurrence = unsupported("ScheduleRecurrence", _WHY, _INSTEAD)

__all__ = ["Pipeline", "PipelineData", "PipelineParameter", "PublishedPipeline",
           "PipelineEndpoint", "StepSequence", "Schedule", "ScheduleRecurrence"]
