"""azureml.widgets.RunDetails(run).show() (docs/sdk.md).

In the cloud a live Jupyter widget; here a rendering of the run once: text
for terminals and plain Python, an HTML table inside a Jupyter kernel
(IPython's display, when IPython is importable and a kernel runs). It
reads the run's state once (a few quick calls to the daemon), never waits
for the run, and never raises: anything that goes wrong is one line of text
instead of a table.
"""

import datetime
import html
import json
import sys


def _in_kernel():
    ip = sys.modules.get("IPython")
    if ip is None:
        return False
    try:
        shell = ip.get_ipython()
    except Exception:
        return False
    return shell is not None and "IPKernelApp" in getattr(shell, "config", {})


def _ts(s):
    if not s:
        return None
    try:
        return datetime.datetime.strptime(s.rstrip("Z")[:26], "%Y-%m-%dT%H:%M:%S.%f")
    except ValueError:
        try:
            return datetime.datetime.strptime(s.rstrip("Z")[:19], "%Y-%m-%dT%H:%M:%S")
        except ValueError:
            return None


def _duration(start, end):
    a, b = _ts(start), _ts(end)
    if a is None:
        return None
    if b is None:
        b = datetime.datetime.now(datetime.timezone.utc).replace(tzinfo=None)
    secs = max(0, int((b - a).total_seconds()))
    return "%d:%02d:%02d" % (secs // 3600, secs % 3600 // 60, secs % 60)


def _cell(v):
    if v is None:
        return "-"
    if isinstance(v, float):
        return "%g" % v
    text = v if isinstance(v, str) else json.dumps(v)
    return text if len(text) <= 60 else text[:57] + "..."


class RunDetails:
    """RunDetails(run).show(): the run's status, duration, metrics and
    children (for a sweep, each child with its status, primary metric and
    hyperparameters, best first), once."""

    def __init__(self, run_instance):
        if not hasattr(run_instance, "get_status"):
            from runyard._run import UserErrorException
            raise UserErrorException("RunDetails takes a run, not %s"
                                     % type(run_instance).__name__)
        self.run_instance = run_instance

    # -- what is shown -----------------------------------------------------------------

    def get_widget_data(self, widget_settings=None):
        """The run's state: {"run_id", "status", "kind", "experiment", "number",
        "target", "start", "end", "duration", "metrics", "children",
        "primary_metric" (a sweep's), "error"}."""
        from runyard._hyperdrive import HyperDriveRun
        run = self.run_instance
        data = {"run_id": run.id, "status": run.get_status(), "children": [],
                "metrics": {}, "primary_metric": None, "error": None}
        details = {}
        try:
            details = run.get_details()
        except Exception:       # an offline run, or a daemon that went away
            pass
        data["start"] = details.get("startTimeUtc")
        data["end"] = details.get("endTimeUtc")
        data["duration"] = _duration(data["start"], data["end"])
        data["target"] = details.get("target")
        try:
            data["number"] = details.get("runNumber", getattr(run, "number", None))
        except Exception:
            data["number"] = None
        data["experiment"] = getattr(getattr(run, "experiment", None), "name", None)
        data["kind"] = (getattr(run, "_doc", None) or {}).get("kind", "run")
        if details.get("error"):
            data["error"] = (details["error"].get("error") or {}).get("message")
        if isinstance(run, HyperDriveRun):
            data["primary_metric"] = run._metric
            data["children"] = [{"run_id": c["run_id"], "status": c["status"],
                                 "metric": c["best_primary_metric"],
                                 "hyperparameters": c["hyperparameters"]}
                                for c in run.get_children_sorted_by_primary_metric()]
            return data
        data["metrics"] = run.get_metrics()
        kids = run.get_children() if hasattr(run, "get_children") else []
        for k in kids:
            m = {}
            try:
                m = k.get_metrics()
            except Exception:
                pass
            first = sorted(m)[0] if m else None
            data["children"].append({"run_id": k.id, "status": k.get_status(),
                                     "metric": (first, m[first]) if first else None})
        return data

    # -- text -------------------------------------------------------------------------

    def _text(self, data):
        lines = ["Run %s: %s" % (data["run_id"], data["status"])]
        if data["primary_metric"] is not None:
            rows = [("Run", "Status", data["primary_metric"], "Hyperparameters")]
            rows += [(c["run_id"], c["status"] or "", _cell(c["metric"]),
                      c["hyperparameters"]) for c in data["children"]]
            lines += _table(rows) if len(rows) > 1 else ["(no children yet)"]
            if data["duration"]:
                lines.append("Duration: %s" % data["duration"])
            return "\n".join(lines) + "\n"
        head = []
        for key, label in (("experiment", "Experiment"), ("number", "Run number"),
                           ("kind", "Type"), ("target", "Target"), ("duration", "Duration")):
            if data.get(key) is not None:
                head.append("%s: %s" % (label, data[key]))
        if head:
            lines.append("   ".join(head))
        if data["error"]:
            lines.append("Error: %s" % data["error"])
        rows = [("Metric", "Value")] + [(k, _cell(v)) for k, v in sorted(data["metrics"].items())]
        lines += _table(rows) if len(rows) > 1 else ["(no metrics)"]
        if data["children"]:
            lines.append("Children (%d):" % len(data["children"]))
            rows = [("Run", "Status", "Metric")]
            rows += [(c["run_id"], c["status"] or "",
                      "%s=%s" % (c["metric"][0], _cell(c["metric"][1])) if c["metric"] else "-")
                     for c in data["children"]]
            lines += _table(rows)
        return "\n".join(lines) + "\n"

    # -- HTML -------------------------------------------------------------------------

    def _repr_html_(self):
        try:
            return self._html(self.get_widget_data())
        except Exception as e:
            return "<p>RunDetails: cannot show the run: %s</p>" % html.escape(str(e))

    def _html(self, data):
        e = lambda v: html.escape(str(v))  # noqa: E731
        parts = ["<div class=\"runyard-run-details\"><p><b>Run %s</b>: %s</p>"
                 % (e(data["run_id"]), e(data["status"]))]
        facts = [(label, data.get(key)) for key, label in (
            ("experiment", "Experiment"), ("number", "Run number"), ("kind", "Type"),
            ("target", "Target"), ("duration", "Duration"), ("error", "Error"))
            if data.get(key) is not None]
        if facts:
            parts.append("<table>%s</table>" % "".join(
                "<tr><th style=\"text-align:left\">%s</th><td>%s</td></tr>" % (e(k), e(v))
                for k, v in facts))
        if data["primary_metric"] is not None:
            head = ("Run", "Status", data["primary_metric"], "Hyperparameters")
            rows = [(c["run_id"], c["status"] or "", _cell(c["metric"]), c["hyperparameters"])
                    for c in data["children"]]
        else:
            if data["metrics"]:
                parts.append(_html_table(("Metric", "Value"), [
                    (k, _cell(v)) for k, v in sorted(data["metrics"].items())]))
            head = ("Run", "Status", "Metric")
            rows = [(c["run_id"], c["status"] or "",
                     "%s=%s" % (c["metric"][0], _cell(c["metric"][1])) if c["metric"] else "-")
                    for c in data["children"]]
        if rows:
            parts.append(_html_table(head, rows))
        parts.append("</div>")
        return "".join(parts)

    # -- showing ------------------------------------------------------------------------

    def show(self, render_lib=None, widget_settings=None):
        """Show the run once: HTML in a Jupyter kernel, text elsewhere.
        Returns None; never raises."""
        try:
            data = self.get_widget_data(widget_settings)
        except Exception as e:
            sys.stdout.write("RunDetails: cannot show run %s: %s\n"
                             % (getattr(self.run_instance, "id", "?"), e))
            sys.stdout.flush()
            return None
        if _in_kernel():
            try:
                from IPython.display import HTML, display
                display(HTML(self._html(data)))
                return None
            except Exception:
                pass
        sys.stdout.write(self._text(data))
        sys.stdout.flush()
        return None


def _table(rows):
    widths = [max(len(str(r[i])) for r in rows) for i in range(len(rows[0]))]
    out = []
    for n, r in enumerate(rows):
        out.append("  ".join(str(c).ljust(w) for c, w in zip(r, widths)).rstrip())
        if n == 0:
            out.append("  ".join("-" * w for w in widths))
    return out


def _html_table(head, rows):
    e = lambda v: html.escape(str(v))  # noqa: E731
    return "<table><thead><tr>%s</tr></thead><tbody>%s</tbody></table>" % (
        "".join("<th>%s</th>" % e(h) for h in head),
        "".join("<tr>%s</tr>" % "".join("<td>%s</td>" % e(c) for c in r) for r in rows))
