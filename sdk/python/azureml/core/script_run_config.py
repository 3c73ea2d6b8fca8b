"""azureml.core.script_run_config: what a run runs, where and with what."""

from runyard._notebook import ScriptRunConfig

__all__ = ["ScriptRunConfig"]
