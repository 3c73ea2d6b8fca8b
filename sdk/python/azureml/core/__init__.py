"""runyard's compatibility module for scripts written against azureml.core.

    from azureml.core import Run          # or: from azureml.core.run import Run
    run = Run.get_context()
    run.log("Accuracy", acc)

Inside a runyard run, Run.get_context() returns a live run whose metrics,
tags, properties and files land in the run's history; anywhere else it
returns an offline run that prints what it is given, as the original does.
Only the run-side API is provided (Run); workspaces, experiments and
environments are runyard's CLI.
"""

from azureml.core.run import Run

__all__ = ["Run"]
