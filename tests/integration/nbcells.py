"""Run a notebook's code cells one by one in one Python process, as a
Jupyter kernel does (tests of issue #19's v1 SDK surface).

The notebook is written as a real .ipynb (nbformat 4) and run by
/usr/bin/python3 with runyard's sdk/python on PYTHONPATH and the private
daemon's socket in RUNYARD_SOCKET. Each cell's stdout, stderr and error (the
exception's type and text) are kept; by default the run stops at the first
cell that raises, and the test sees which one."""

import json
import os
import subprocess

from conftest import DEADLINE, PY, REPO

SDK = REPO / "sdk" / "python"

# What runs inside the kernel: every code cell in one namespace, its output
# captured per cell.
DRIVER = r'''
import contextlib, io, json, sys, traceback
nb = json.load(open(sys.argv[1]))
out, ns = [], {"__name__": "__main__"}
keep_going = sys.argv[3] == "1"
for i, cell in enumerate(c for c in nb["cells"] if c["cell_type"] == "code"):
    src = "".join(cell["source"])
    o, e = io.StringIO(), io.StringIO()
    res = {"cell": i, "ok": True, "stdout": "", "stderr": "", "error": None}
    try:
        with contextlib.redirect_stdout(o), contextlib.redirect_stderr(e):
            exec(compile(src, "<cell %d>" % i, "exec"), ns)
    except BaseException as ex:
        res["ok"] = False
        res["error"] = {"type": type(ex).__name__, "module": type(ex).__module__,
                        "text": str(ex), "traceback": traceback.format_exc()}
    res["stdout"], res["stderr"] = o.getvalue(), e.getvalue()
    out.append(res)
    json.dump(out, open(sys.argv[2], "w"))
    if not res["ok"] and not keep_going:
        break
'''


def write_ipynb(path, cells):
    nb = {"nbformat": 4, "nbformat_minor": 5,
          "metadata": {"kernelspec": {"name": "python3", "display_name": "Python 3",
                                      "language": "python"}},
          "cells": [{"cell_type": "code", "execution_count": None, "metadata": {},
                     "outputs": [], "id": "c%d" % i,
                     "source": c.splitlines(keepends=True)} for i, c in enumerate(cells)]}
    path.write_text(json.dumps(nb, indent=1))
    return path


def run_cells(daemon, cwd, cells, env=None, keep_going=False, expect_ok=True, timeout=None):
    """Run cells (a list of code strings) as a notebook in cwd; the list of
    per-cell results. expect_ok: every cell must run without an exception."""
    nb = write_ipynb(cwd / "notebook.ipynb", cells)
    res = cwd / "notebook.results.json"
    if res.exists():
        res.unlink()
    full = dict(os.environ, PYTHONPATH=str(SDK), PYTHONUNBUFFERED="1",
                XDG_CONFIG_HOME=str(cwd / ".config"), XDG_DATA_HOME=str(cwd / ".data"))
    if daemon is not None:
        full["RUNYARD_SOCKET"] = daemon.socket
    full.update(env or {})
    p = subprocess.run([PY, "-c", DRIVER, str(nb), str(res), "1" if keep_going else "0"],
                       cwd=cwd, env=full, capture_output=True, text=True,
                       timeout=timeout or DEADLINE * 4)
    results = json.loads(res.read_text()) if res.exists() else []
    if expect_ok:
        bad = [r for r in results if not r["ok"]]
        assert p.returncode == 0 and not bad and len(results) == len(cells), (
            "notebook failed (rc %d) at cell %s:\n%s\n--- its stdout:\n%s\n--- its stderr:\n"
            "%s\n--- kernel stderr:\n%s" % (
                p.returncode, bad[0]["cell"] if bad else len(results),
                bad[0]["error"]["traceback"] if bad else "",
                bad[0]["stdout"][-3000:] if bad else "", bad[0]["stderr"][-3000:] if bad else "",
                p.stderr[-3000:]))
    return results
