"""azureml.core.run.Run on top of runyard's run-side module."""

from runyard import _run


class Run(_run.Run):
    """A run inside runyard, with the cloud original's entry point.
    Run(experiment, run_id) is any run of the experiment's workspace, as
    Run.get(workspace, run_id)."""

    def __new__(cls, *args, **kwargs):
        exp = args[0] if args else kwargs.get("experiment")
        run_id = args[1] if len(args) > 1 else kwargs.get("run_id")
        if exp is not None and not isinstance(exp, str) and hasattr(exp, "workspace"):
            if run_id is None:
                raise TypeError("Run(experiment, run_id) needs a run_id")
            from runyard._notebook import get_run
            return get_run(exp.workspace, run_id)
        return super().__new__(cls)

    @classmethod
    def get_context(cls, allow_offline=True, used_for_context_manager=False, **kwargs):
        """The run this process belongs to; outside runyard an offline run that
        prints what it is given (or RunyardError when allow_offline is False)."""
        run = _run.get_run(cls, _OfflineRun)
        if isinstance(run, _run.OfflineRun) and not allow_offline:
            raise _run.RunyardError("not inside a runyard run (RUNYARD_RUN_ID is not set) "
                                    "and allow_offline is False")
        return run

    @staticmethod
    def get(workspace, run_id):
        """A run seen from outside it (a notebook): status, metrics, and
        register_model of its outputs."""
        from runyard._notebook import get_run
        return get_run(workspace, run_id)


class _OfflineRun(_run.OfflineRun):
    """The offline run of Run.get_context() outside runyard."""


__all__ = ["Run"]
