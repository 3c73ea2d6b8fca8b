"""Interactive runs: Experiment.start_logging() in a notebook (docs/sdk.md).

The run is a run of the daemon (kind "interactive": run.submit with
"interactive") whose process is the notebook's own. What it is given goes
through its tracking file exactly as inside a submitted run (the live
runyard Run writes it), questions go over the socket with its token, and a
background thread sends run.heartbeat; the daemon ends the run Failed with
code HeartbeatLost when the heartbeats stop (the notebook died). complete(),
fail() and cancel() end it (run.finish).

Pure standard library.
"""

import os
import sys
import tempfile
import threading

from runyard._notebook import RunHandle, TERMINAL
from runyard._run import DaemonError, Run as LiveRun, UserErrorException, _Client

# Seconds the daemon waits for a heartbeat before it fails the run; the
# thread sends one every quarter of it (at most every 10 s).
HEARTBEAT_TIMEOUT = 120.0


def _timeout():
    try:
        v = float(os.environ.get("RUNYARD_HEARTBEAT_TIMEOUT", HEARTBEAT_TIMEOUT))
        return v if 1 <= v <= 86400 else HEARTBEAT_TIMEOUT
    except ValueError:
        return HEARTBEAT_TIMEOUT


_EMPTY = None


def _empty_dir():
    """The source of a run without a snapshot directory: an empty directory."""
    global _EMPTY
    if _EMPTY is None or not os.path.isdir(_EMPTY):
        _EMPTY = tempfile.mkdtemp(prefix="runyard-nosnapshot-")
    return _EMPTY


def start(ws, experiment, snapshot_directory=None, outputs=None, parent=None,
          display_name=None, tags=None):
    """run.submit an interactive run and return its InteractiveRun."""
    source = os.path.abspath(os.fspath(snapshot_directory)) if snapshot_directory else _empty_dir()
    args = {"command": [sys.executable], "source": source, "experiment": experiment,
            "interactive": True, "heartbeat_timeout": _timeout()}
    if parent is not None:
        args["parent"] = parent
    res = ws._call("run.submit", args, timeout=None)
    run = InteractiveRun(ws, res, outputs=outputs, snapshot=bool(snapshot_directory))
    if display_name:
        run.tag("mlflow.runName", display_name)
    if tags:
        run.set_tags(tags)
    return run


class InteractiveRun(RunHandle):
    """A run the notebook itself runs: the whole logging API of a run
    (log, log_list, log_row, log_table, log_image, upload_file(s),
    upload_folder, tag, set_tags, add_properties), child runs, and
    complete(), fail(), cancel(). A context manager: completed at the end of
    the with block, failed when it raises."""

    def __init__(self, workspace, submit_result, outputs=None, snapshot=False):
        self._live = LiveRun(submit_result["id"], None, submit_result["tracking_file"],
                             submit_result["token"], workspace.socket_path)
        super().__init__(workspace, submit_result["id"])
        self._submit = submit_result
        self._live.experiment = self.experiment
        self._outputs = outputs
        self._ended = False
        self._stop = threading.Event()
        period = min(10.0, max(0.2, float(submit_result.get("heartbeat_timeout",
                                                            HEARTBEAT_TIMEOUT)) / 4))
        self._beat = threading.Thread(target=self._heartbeat, args=(period,),
                                      name="runyard-heartbeat-%s" % self.number, daemon=True)
        self._beat.start()

    def __repr__(self):
        return "Run(Experiment: %s,\nId: %s,\nType: interactive,\nStatus: %s)" % (
            self.experiment.name, self.id, self._doc.get("status"))

    def __enter__(self):
        return self

    def __exit__(self, kind, value, tb):
        if self._ended:
            return False
        if kind is None:
            self.complete()
        else:
            self.fail(error_details="%s: %s" % (kind.__name__, value))
        return False

    def _heartbeat(self, period):
        client = _Client(self.workspace.socket_path, timeout=max(5.0, period * 2))
        try:
            while not self._stop.wait(period):
                try:
                    res = client.call("run.heartbeat", {"token": self._live._token})
                except DaemonError:
                    continue     # the daemon restarts; keep trying
                if res.get("status") in TERMINAL:
                    self._ended = True
                    return
        finally:
            client.close()

    # -- the logging API: the tracking file, as inside a run ----------------------------

    def log(self, name, value, description="", step=None):
        self._live.log(name, value, description, step)

    def log_list(self, name, value, description=""):
        self._live.log_list(name, value, description)

    def log_row(self, name, description=None, **kwargs):
        self._live.log_row(name, description, **kwargs)

    def log_table(self, name, value, description=""):
        self._live.log_table(name, value, description)

    def log_image(self, name, path=None, plot=None, description=""):
        self._live.log_image(name, path=path, plot=plot, description=description)

    def log_confusion_matrix(self, name, value, description=""):
        self._live.log_confusion_matrix(name, value, description)

    def log_accuracy_table(self, name, value, description=""):
        self._live.log_accuracy_table(name, value, description)

    def upload_file(self, name, path_or_stream, **kwargs):
        return self._live.upload_file(name, path_or_stream)

    def upload_files(self, names, paths, **kwargs):
        return self._live.upload_files(names, paths)

    def upload_folder(self, name, path, **kwargs):
        return self._live.upload_folder(name, path)

    def tag(self, key, value=None):
        self._live.tag(key, value)

    def set_tags(self, tags):
        self._live.set_tags(tags)

    def remove_tags(self, tags):
        self._live.remove_tags(tags)

    def add_properties(self, properties):
        self._live.add_properties(properties)

    def flush(self, timeout_seconds=None):
        self._live.flush()

    def _sync(self):
        try:
            self._live._ask("run.context")
        except DaemonError:
            pass

    def _show(self):
        self._sync()
        return super()._show()

    def get_metrics(self, name=None, recursive=False, run_type=None, populate=False):
        if not self._ended:
            return self._live.get_metrics(name)
        return super().get_metrics(name)

    def get_file_names(self):
        self._sync()
        return super().get_file_names()

    # -- ending it ------------------------------------------------------------------

    def _finish(self, status, code=None, message=None):
        if status == "Completed" and self._outputs and os.path.isdir(self._outputs):
            self._live.upload_folder("outputs", self._outputs)
        self._live.flush()
        args = {"token": self._live._token, "status": status}
        if code:
            args["error_code"] = code
        if message:
            args["error_message"] = message
        self._stop.set()
        try:
            self.workspace._call("run.finish", args, timeout=None)
        except DaemonError as e:
            if e.code != "Conflict":      # ended already (canceled from outside)
                raise
        self._ended = True
        self._show()

    def complete(self, _set_status=True):
        """End the run Completed (the outputs directory given to
        start_logging is uploaded first)."""
        if not self._ended:
            self._finish("Completed")

    def fail(self, error_details=None, error_code=None, _set_status=True):
        """End the run Failed with error_details (a text or an exception) and
        error_code (default UserError)."""
        if not self._ended:
            text = None if error_details is None else str(error_details)
            self._finish("Failed", str(error_code) if error_code else None, text)

    def cancel(self):
        """End the run Canceled."""
        if not self._ended:
            self._finish("Canceled")

    def wait_for_completion(self, show_output=False, wait_post_processing=False,
                            raise_on_error=True):
        if not self._ended:
            raise UserErrorException("run %s is an interactive run of this notebook: it ends "
                                     "when you call complete(), fail() or cancel()" % self.id)
        return super().wait_for_completion(show_output, wait_post_processing, raise_on_error)

    # -- children --------------------------------------------------------------------

    def child_run(self, name=None, run_id=None, outputs=None):
        """A child of this run, itself an interactive run of this notebook."""
        return child_run(self.workspace, self.experiment.name, self.id, name, outputs)

    def create_children(self, count=None, tag_key=None, tag_values=None):
        return create_children(self, count, tag_key, tag_values)


def child_run(ws, experiment, parent_id, name=None, outputs=None):
    run = start(ws, experiment, parent=parent_id, outputs=outputs)
    if name:
        run.tag("mlflow.runName", name)
    return run


def create_children(run, count=None, tag_key=None, tag_values=None):
    """count children, or one per tag_values (tagged tag_key=value)."""
    if tag_values is not None:
        if not tag_key:
            raise UserErrorException("create_children: tag_values needs a tag_key")
        values = list(tag_values)
        if count is not None and count != len(values):
            raise UserErrorException("create_children: count %d but %d tag_values"
                                     % (count, len(values)))
    else:
        if count is None or isinstance(count, bool) or not isinstance(count, int) or count < 1:
            raise UserErrorException("create_children needs a count >= 1 or tag_values")
        values = [None] * count
    kids = []
    for v in values:
        kid = run.child_run()
        if tag_key and v is not None:
            kid.tag(tag_key, v)
        kids.append(kid)
    return kids
