"""runyard's run-side API: metrics, tags, properties and files from inside a run.

    import runyard
    run = runyard.get_run()
    run.log("loss", 0.25)

Inside a run that runyardd started, get_run() returns a live Run that appends
what it is given to the run's tracking file (RUNYARD_TRACKING_FILE), which the
daemon tails into the run's history; questions (get_metrics, get_status, ...)
go over the daemon's socket with the run's token (RUNYARD_RUN_TOKEN).
Anywhere else it returns an OfflineRun that prints what it is given.

Writing never waits for the daemon: values are buffered and written in
batches, from the logging call when a buffer is full, from a background
thread every half second, and at interpreter exit (normal exit, sys.exit and
an uncaught exception alike; not os._exit or a kill). docs/tracking.md
describes the file format and the limits.

Models and services (docs/models.md): run.register_model(...) inside a run,
and Workspace, Model.register, Model.deploy and Webservice anywhere.

Pure standard library, so it works in any interpreter a run uses.
"""

from runyard._run import (  # noqa: F401
    ConflictError,
    DaemonError,
    LimitError,
    OfflineRun,
    Run,
    RunyardError,
    get_run,
)
from runyard._models import (  # noqa: F401
    InferenceConfig,
    LocalWebservice,
    Model,
    ResourceConfiguration,
    Webservice,
    WebserviceException,
    Workspace,
)
from runyard._notebook import (  # noqa: F401
    ActivityFailedException,
    ComputeTarget,
    Environment,
    Experiment,
    RunHandle,
    ScriptRunConfig,
)

__all__ = ["get_run", "Run", "OfflineRun", "RunyardError", "LimitError", "ConflictError",
           "DaemonError", "Workspace", "Model", "ResourceConfiguration", "InferenceConfig",
           "Webservice", "LocalWebservice", "WebserviceException", "RunHandle",
           "Environment", "Experiment", "ScriptRunConfig", "ComputeTarget",
           "ActivityFailedException"]
