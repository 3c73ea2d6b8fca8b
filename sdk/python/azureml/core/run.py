"""azureml.core.run.Run on top of runyard's run-side module."""

from runyard import _run


class Run(_run.Run):
    """A run inside runyard, with the cloud original's entry point."""

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
