"""Batch control (issue #17): cancel of many runs, ranges and selectors, a queued
run's priority changed, the daemon's max runs changed without a restart.
"""

import json

from conftest import PY, WAIT_FILE, script, wait_for

HOLD = WAIT_FILE + script("""
    import sys
    wait_file(sys.argv[1])
""")


def submit(d, src, release, experiment="default", priority=None):
    args = ["submit", "--source", src, "--python", PY, "--experiment", experiment]
    if priority is not None:
        args += ["--priority", str(priority)]
    return d.cli(*args, "--", "hold.py", str(release), json=True).json


def test_cancel_many_ranges_and_selectors(daemon_factory, make_tree, tmp_path):
    d = daemon_factory(max_runs=1)
    src = make_tree({"hold.py": HOLD})
    runs = [submit(d, src, tmp_path / "never", experiment="a") for _ in range(3)]
    others = [submit(d, src, tmp_path / "never", experiment="b") for _ in range(2)]
    first, last = runs[0]["seq"], runs[-1]["seq"]
    res = d.cli("cancel", "%d-%d" % (first, last))
    assert res.stdout.count("canceled") + res.stdout.count("Cancel requested") == 3, res
    for r in runs:
        assert d.wait_terminal(r["id"])["status"] == "Canceled"
    # Already ended in a batch is fine; the selector takes the rest.
    res = d.cli("cancel", runs[0]["id"], "--experiment", "b", json=True)
    assert len(res.json) == 2
    for r in others:
        assert d.wait_terminal(r["id"])["status"] == "Canceled"
    assert d.cli("cancel", "--experiment", "nothing", check=2).stderr.strip() == \
        "runyard: no runs match"
    # One run, alone, that has ended is still refused as before.
    d.cli("cancel", runs[0]["id"], check=2)


def test_update_priority_changes_who_starts_first(daemon_factory, make_tree, tmp_path):
    d = daemon_factory(max_runs=1)
    src = make_tree({"hold.py": HOLD})
    busy = submit(d, src, tmp_path / "busy")
    wait_for(lambda: d.show(busy["id"])["status"] == "Running", what="the first run")
    low = submit(d, src, tmp_path / "low")
    high = submit(d, src, tmp_path / "high")
    res = d.cli("update", high["id"], "--priority", "10", json=True).json
    assert res["priority"] == 10
    assert d.show(high["id"])["priority"] == 10
    refused = d.cli("update", busy["id"], "--priority", "5", check=2)
    assert "not queued" in refused.stderr
    (tmp_path / "busy").touch()
    wait_for(lambda: d.show(high["id"])["status"] == "Running", what="the raised run")
    assert d.show(low["id"])["status"] == "Queued"
    (tmp_path / "high").touch()
    (tmp_path / "low").touch()
    assert d.wait_terminal(low["id"])["status"] == "Completed"


def test_update_changes_a_queued_runs_request(daemon_factory, make_tree, tmp_path):
    d = daemon_factory(max_runs=4, extra=["--cpus", "2"])
    src = make_tree({"hold.py": HOLD})
    go = tmp_path / "go"
    big = d.rpc("run.submit", {"source": str(src), "python": PY, "cpus": 2,
                               "command": ["hold.py", str(go)]})
    wait_for(lambda: d.show(big["id"])["status"] == "Running", what="the 2-CPU run")
    wide = d.rpc("run.submit", {"source": str(src), "python": PY, "cpus": 2,
                                "command": ["hold.py", str(go)]})
    narrow = submit(d, src, go)
    assert d.show(wide["id"])["status"] == "Queued"
    # Refused values change nothing, and say why.
    bad = d.cli("update", wide["id"], "--cpus", "3", "--priority", "7", check=2)
    assert "this machine has 2" in bad.stderr, bad
    bad = d.cli("update", wide["id"], "--mem", "lots", check=2)
    assert "mem" in bad.stderr, bad
    bad = d.cli("update", big["id"], "--cpus", "1", check=2)
    assert "not queued" in bad.stderr
    shown = d.show(wide["id"])
    assert shown["request"]["cpus"] == 2 and shown["priority"] == 0
    # The request changes, only what was given, and survives a restart.
    res = d.cli("update", wide["id"], "--cpus", "1", "--mem", "64M", json=True).json
    assert res["request"]["cpus"] == 1 and res["request"]["mem"] == 64 << 20
    out = d.cli("update", narrow["id"], "--priority", "3").stdout
    assert "now has priority 3 and asks for 1 CPU" in out, out
    d.restart()
    shown = d.show(wide["id"])
    assert shown["request"]["cpus"] == 1 and shown["request"]["mem"] == 64 << 20
    # Now both fit beside each other once the big run ends.
    go.touch()
    for r in (big, wide, narrow):
        assert d.wait_terminal(r["id"])["status"] == "Completed"
    assert d.show(wide["id"])["allocation"]["cpus"] == 1


def test_daemon_set_max_runs(daemon_factory, make_tree, tmp_path):
    d = daemon_factory(max_runs=1, extra=["--cpus", "4"])
    src = make_tree({"hold.py": HOLD})
    a = submit(d, src, tmp_path / "go")
    b = submit(d, src, tmp_path / "go")
    wait_for(lambda: d.show(a["id"])["status"] == "Running", what="a")
    assert d.show(b["id"])["status"] == "Queued"
    out = d.cli("daemon", "set", "--max-runs", "2", json=True).json
    assert out["max_runs"] == 2
    wait_for(lambda: d.show(b["id"])["status"] == "Running", what="b once there is room")
    assert d.rpc("daemon.status")["max_runs"] == 2
    (tmp_path / "go").touch()
    for r in (a, b):
        assert d.wait_terminal(r["id"])["status"] == "Completed"


def test_show_and_wait_of_many(daemon_factory, make_tree, tmp_path):
    d = daemon_factory(max_runs=2)
    src = make_tree({"hold.py": HOLD, "bad.py": "raise SystemExit(3)\n"})
    good = submit(d, src, tmp_path / "go")
    bad = d.cli("submit", "--source", src, "--python", PY, "--", "bad.py", json=True).json
    (tmp_path / "go").touch()
    res = d.cli("wait", good["id"], bad["id"], check=2)
    assert "run %s did not complete" % bad["id"] in res.stderr
    assert "1 of 2 runs did not complete" in res.stderr
    assert good["id"] not in res.stderr
    assert d.cli("wait", good["id"]).rc == 0
    shown = d.cli("show", "%d-%d" % (good["seq"], bad["seq"]), json=True).json
    assert [r["id"] for r in shown] == [good["id"], bad["id"]]
    text = d.cli("show", good["id"], bad["id"]).stdout
    assert good["id"] in text and bad["id"] in text
    one = d.cli("show", good["id"], json=True).json
    assert one["id"] == good["id"]


def test_wait_for_a_sweep_and_an_array(daemon_factory, make_tree):
    d = daemon_factory(max_runs=2)
    src = make_tree({"ok.py": "import runyard, sys\nrunyard.get_run().log('m', 1)\n",
                     "bad.py": "raise SystemExit(1)\n"})
    sweep = d.cli("sweep", "submit", "--source", src, "--python", PY, "--metric", "m",
                  "--goal", "maximize", "--sampling", "grid", "--param", "--x=choice(1, 2)",
                  "--", "ok.py", json=True).json
    res = d.cli("wait", sweep["id"])
    assert "Completed" in res.stdout
    array = d.cli("submit", "--source", src, "--python", PY, "--array", "0-1", "--",
                  "bad.py", json=True).json
    d.cli("wait", array["id"], check=2)
    assert d.show(array["id"])["status"] == "Failed"


def test_tag_many(daemon, make_tree):
    src = make_tree({"a.py": "print(1)\n"})
    runs = [daemon.submit(src, "a.py", experiment="t") for _ in range(2)]
    for r in runs:
        daemon.wait_terminal(r["id"])
    out = daemon.cli("tag", runs[0]["id"], runs[1]["id"], "stage=eval", json=True).json
    assert [o["tags"] for o in out] == [{"stage": "eval"}] * 2
    daemon.cli("tag", "--experiment", "t", "--remove", "stage")
    assert all(daemon.show(r["id"])["tags"] == {} for r in runs)
    one = daemon.cli("tag", runs[0]["id"], "k=v", json=True).json
    assert one["tags"] == {"k": "v"}
