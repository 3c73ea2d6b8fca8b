"""Sweeps through the protocol (issue #15; docs/sweeps.md): a parent run whose
children are ordinary runs, capped at max_concurrent, stopped by the
early-termination policy with the reason recorded, canceled as a whole, bound
by max_duration, and carried on after kill -9 with no trial lost or made twice.
"""

import json
import os
import time
from datetime import datetime, timezone

import pytest

import ryclient
from conftest import DEADLINE, PY, TERMINAL, parse_ts, script, wait_for

# Logs the primary metric once from its arguments: --x NUMBER [--name TEXT].
ONCE = script("""
    import argparse, runyard
    p = argparse.ArgumentParser()
    p.add_argument("--x", type=float, default=0)
    p.add_argument("--name", default="")
    p.add_argument("--sleep", type=float, default=0)
    a = p.parse_args()
    import time; time.sleep(a.sleep)
    runyard.get_run().log("score", -(a.x - 3) ** 2)
    print("args", a.x, a.name)
""")

# Logs the primary metric once per epoch: --q is how good the trial is.
EPOCHS = script("""
    import argparse, time, runyard
    p = argparse.ArgumentParser()
    p.add_argument("--q", type=float)
    p.add_argument("--epochs", type=int, default=20)
    p.add_argument("--pause", type=float, default=0.3)
    a = p.parse_args()
    run = runyard.get_run()
    for e in range(a.epochs):
        run.log("acc", a.q * (e + 1) / a.epochs)
        time.sleep(a.pause)
""")


def submit(daemon, source, program, **kw):
    args = {"source": str(source), "python": PY, "command": [program],
            "experiment": kw.pop("experiment", "sweeps")}
    args.update(kw)
    return daemon.rpc("sweep.submit", args)


def wait_sweep(daemon, sweep, timeout=DEADLINE):
    def ended():
        s = daemon.rpc("sweep.show", {"sweep": sweep})
        return s if s["status"] in TERMINAL else None
    return wait_for(ended, timeout=timeout, what="sweep %s to end" % sweep)


def children(daemon, sweep):
    return daemon.rpc("run.list", {"parent": sweep, "limit": 100000})["runs"]


def test_grid_sweep_makes_every_configuration_once(daemon, make_tree):
    src = make_tree({"once.py": ONCE})
    res = submit(daemon, src, "once.py", metric="score", goal="maximize", sampling="grid",
                 params={"--x": "choice(1, 2.5, 3, 4)", "--name": "choice('a', 'b c')"},
                 max_concurrent=3)
    assert res["status"] == "Running" and res["kind"] == "sweep"
    assert res["sweep"]["max_total"] == 8  # grid defaults to its size
    show = wait_sweep(daemon, res["id"])
    assert show["status"] == "Completed"
    kids = children(daemon, res["id"])
    assert len(kids) == 8
    assert all(k["parent"] == res["id"] and k["kind"] == "run" for k in kids)
    assert all(k["status"] == "Completed" for k in kids)
    # NAME VALUE appended exactly as written, after the sweep's own command.
    cmds = sorted(tuple(k["command"]) for k in kids)
    assert len(set(cmds)) == 8
    assert ("once.py", "--x", "3", "--name", "b c") in cmds
    assert show["trials"] == 8 and show["counts"]["Completed"] == 8
    best = show["best"]
    assert best["value"] == 0 and best["params"]["--x"] == 3
    assert best["arguments"][:2] == ["--x", "3"]
    # The sweep is a run of its own, listed and shown like one.
    run = daemon.rpc("run.show", {"run": res["id"]})
    assert run["kind"] == "sweep" and run["parent"] is None and run["status"] == "Completed"
    listed = daemon.rpc("sweep.list", {})["sweeps"]
    assert [s["id"] for s in listed] == [res["id"]]
    assert listed[0]["trials"] == 8 and listed[0]["best"]["value"] == 0


def test_random_sweep_is_reproducible_with_its_seed(daemon, make_tree):
    src = make_tree({"once.py": ONCE})
    params = {"--x": "quniform(0, 6, 0.5)"}
    seen = []
    for _ in range(2):
        res = submit(daemon, src, "once.py", metric="score", goal="maximize",
                     params=params, max_total=5, max_concurrent=5, seed=42)
        wait_sweep(daemon, res["id"])
        kids = sorted(children(daemon, res["id"]), key=lambda k: k["seq"])
        seen.append([k["command"][2] for k in kids])
    assert seen[0] == seen[1]
    assert all(float(v) % 0.5 == 0 for v in seen[0])


def test_max_concurrent_caps_unfinished_children(daemon_factory, make_tree):
    daemon = daemon_factory(max_runs=8)
    src = make_tree({"once.py": ONCE})
    res = submit(daemon, src, "once.py", metric="score", goal="maximize",
                 params={"--x": "uniform(0, 6)", "--sleep": "choice(0.4)"},
                 max_total=6, max_concurrent=2)
    most = 0
    while True:
        kids = children(daemon, res["id"])
        most = max(most, sum(k["status"] not in TERMINAL for k in kids))
        if daemon.rpc("sweep.show", {"sweep": res["id"]})["status"] in TERMINAL:
            break
        time.sleep(0.05)
    assert most == 2
    assert len(children(daemon, res["id"])) == 6


def test_bandit_cancels_the_losers_with_the_reason(daemon_factory, make_tree):
    daemon = daemon_factory(max_runs=4)
    src = make_tree({"epochs.py": EPOCHS})
    res = submit(daemon, src, "epochs.py", metric="acc", goal="maximize", sampling="grid",
                 params={"--q": "choice(1.0, 0.95, 0.3)"}, max_concurrent=3,
                 policy="bandit,slack_factor=0.2,evaluation_interval=1,delay_evaluation=2")
    show = wait_sweep(daemon, res["id"])
    kids = {k["command"][2]: k for k in children(daemon, res["id"])}
    loser = kids["0.3"]
    assert loser["status"] == "Canceled"
    assert loser["error"]["code"] == "EarlyTerminated"
    assert loser["error"]["message"].startswith("bandit: ")
    assert kids["1"]["status"] == "Completed" and kids["0.95"]["status"] == "Completed"
    assert [d["child"] for d in show["decisions"]] == [loser["id"]]
    d = show["decisions"][0]
    assert d["policy"] == "bandit" and d["interval"] >= 2 and d["message"] == loser["error"]["message"]
    # Within a second of the line that condemned it: the k-th point's time.
    pts = daemon.rpc("run.metrics", {"run": loser["id"], "name": "acc"})
    logged = pts["points"][d["interval"] - 1]["ts"]
    lag = parse_ts(loser["ended_at"]) - (parse_ts(logged) if isinstance(logged, str)
                                         else datetime.fromtimestamp(logged, timezone.utc))
    assert lag.total_seconds() < 1.0
    assert loser["status"] == "Canceled"
    exp = daemon.rpc("sweep.explain", {"sweep": res["id"]})
    c = [c for c in exp["children"] if c["id"] == loser["id"]][0]
    assert c["decision"]["message"] == d["message"] and len(c["values"]) >= d["interval"]
    assert exp["policy"]["name"] == "bandit" and exp["policy"]["slack_factor"] == 0.2


def test_cancel_stops_queued_and_running_children(daemon_factory, make_tree):
    daemon = daemon_factory(max_runs=1)
    src = make_tree({"epochs.py": EPOCHS})
    res = submit(daemon, src, "epochs.py", metric="acc", goal="maximize",
                 params={"--q": "uniform(0, 1)", "--pause": "choice(5)"},
                 max_total=10, max_concurrent=3)
    wait_for(lambda: any(k["status"] == "Running" for k in children(daemon, res["id"])),
             what="a running child")
    out = daemon.rpc("run.cancel", {"run": res["id"]})
    assert out["canceled"] == 3
    show = wait_sweep(daemon, res["id"])
    assert show["status"] == "Canceled"
    kids = children(daemon, res["id"])
    assert len(kids) == 3
    assert all(k["status"] == "Canceled" and k["error"]["code"] == "SweepCanceled"
               for k in kids), [(k["status"], k.get("error")) for k in kids]
    with pytest.raises(ryclient.ProtocolError) as e:
        daemon.rpc("sweep.cancel", {"sweep": res["id"]})
    assert e.value.code == "Conflict"


def test_max_duration_ends_the_sweep(daemon, make_tree):
    src = make_tree({"epochs.py": EPOCHS})
    res = submit(daemon, src, "epochs.py", metric="acc", goal="maximize",
                 params={"--q": "uniform(0, 1)", "--pause": "choice(5)"},
                 max_total=10, max_concurrent=2, max_duration=0.03)
    show = wait_sweep(daemon, res["id"])
    assert show["status"] == "Completed" or show["status"] == "Failed"
    kids = children(daemon, res["id"])
    assert len(kids) == 2
    assert all(k["error"]["code"] == "SweepTimeLimit" for k in kids)


def test_kill9_mid_sweep_loses_and_repeats_nothing(daemon_factory, make_tree):
    daemon = daemon_factory(max_runs=2)
    src = make_tree({"epochs.py": EPOCHS})
    res = submit(daemon, src, "epochs.py", metric="acc", goal="maximize",
                 params={"--q": "uniform(0, 1)", "--epochs": "choice(4)",
                         "--pause": "choice(0.25)"},
                 max_total=8, max_concurrent=2, seed=7)
    wait_for(lambda: len(children(daemon, res["id"])) >= 3, what="three trials made")
    running = [k["id"] for k in children(daemon, res["id"]) if k["status"] == "Running"]
    daemon.kill9()
    daemon.restart()
    show = wait_sweep(daemon, res["id"])
    assert show["status"] == "Completed"
    kids = children(daemon, res["id"])
    assert len(kids) == 8 and show["trials"] == 8
    # Re-attached, not failed: the children running at the kill completed.
    by_id = {k["id"]: k for k in kids}
    assert all(by_id[i]["status"] == "Completed" for i in running)
    # The same seed without a crash draws the same eight configurations.
    again = submit(daemon, src, "epochs.py", metric="acc", goal="maximize",
                   params={"--q": "uniform(0, 1)", "--epochs": "choice(4)",
                           "--pause": "choice(0.25)"},
                   max_total=8, max_concurrent=2, seed=7)
    wait_sweep(daemon, again["id"])
    first = sorted(k["command"][2] for k in kids)
    second = sorted(k["command"][2] for k in children(daemon, again["id"]))
    assert first == second


@pytest.mark.parametrize("args,words", [
    ({"params": {"--x": "uniform(3, 1)"}}, "uniform"),
    ({"params": {"--x": "nosuch(1)"}}, "nosuch"),
    ({"params": {}}, "params"),
    ({"params": {"--x": "uniform(0, 1)"}, "sampling": "grid"}, "grid"),
    ({"params": {"--x": "normal(0, 1)"}, "sampling": "bayesian"}, "bayesian"),
    ({"params": {"--x": "choice(1)"}, "goal": "up"}, "goal"),
    ({"params": {"--x": "choice(1)"}, "metric": ""}, "metric"),
    ({"params": {"--x": "choice(1)"}, "sampling": "random", "max_total": None}, "max_total"),
    ({"params": {"--x": "choice(1)"}, "policy": "bandit"}, "slack"),
    ({"params": {"--x": "choice(1)"}, "policy": "bandit,slack_factor=0.1,nope=1"}, "nope"),
    ({"params": {"--x": "choice(1)"}, "policy": 7}, "policy"),
    ({"params": {"--x": "choice(1)"}, "max_concurrent": 0}, "max_concurrent"),
    ({"params": "choice(1)"}, "params"),
])
def test_bad_definitions_are_refused_and_nothing_is_stored(daemon, make_tree, args, words):
    src = make_tree({"once.py": ONCE})
    full = {"source": str(src), "python": PY, "command": ["once.py"], "metric": "score",
            "goal": "maximize", "max_total": 2}
    full.update(args)
    full = {k: v for k, v in full.items() if v is not None}
    with pytest.raises(ryclient.ProtocolError) as e:
        daemon.rpc("sweep.submit", full)
    assert e.value.code == "InvalidArgument"
    assert words in e.value.message
    assert daemon.rpc("run.list", {})["runs"] == []


def test_a_plain_run_is_not_a_sweep(daemon, make_tree):
    src = make_tree({"once.py": ONCE})
    run = daemon.submit(src, "once.py")
    for op in ("sweep.show", "sweep.explain", "sweep.cancel"):
        with pytest.raises(ryclient.ProtocolError) as e:
            daemon.rpc(op, {"sweep": run["id"]})
        assert e.value.code == "NotFound"
    with pytest.raises(ryclient.ProtocolError) as e:
        daemon.rpc("sweep.show", {"sweep": "no_such_run"})
    assert e.value.code == "NotFound"
    assert daemon.rpc("run.show", {"run": run["id"]})["kind"] == "run"
