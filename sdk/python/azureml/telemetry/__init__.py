"""azureml.telemetry: set_diagnostics_collection is accepted and does
nothing (runyard sends nothing anywhere); it says so once per process."""

import sys

_said = False


def set_diagnostics_collection(send_diagnostics=True, verbose=False, reset=False,
                               path=None, **kwargs):
    """Accepted and ignored: runyard collects and sends no diagnostics."""
    global _said
    if not _said:
        _said = True
        print("runyard: set_diagnostics_collection(send_diagnostics=%r) has no effect; "
              "runyard collects and sends no diagnostics" % (send_diagnostics,),
              file=sys.stderr)


def get_diagnostics_collection_info(**kwargs):
    return {"send_diagnostics": False, "runyard": "no diagnostics are collected"}


__all__ = ["set_diagnostics_collection", "get_diagnostics_collection_info"]
