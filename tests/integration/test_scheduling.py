"""Scheduling by resources on the local machine (issue #17; docs/scheduling.md):
CPUs, memory and GPUs requested at submit, admitted without oversubscribing,
GPUs assigned by UUID in CUDA_VISIBLE_DEVICES and kept across a restart, and
the backfill rule that lets a CPU-only run pass one that waits for a GPU.
"""

import json
import os
import time

import pytest

import ryclient
from conftest import DEADLINE, PY, TERMINAL, WAIT_FILE, script, wait_for

# Waits for a file named by its first argument, then prints what it was given.
HOLD = WAIT_FILE + script("""
    import json, os, sys
    print(json.dumps({"cuda": os.environ.get("CUDA_VISIBLE_DEVICES"),
                      "order": os.environ.get("CUDA_DEVICE_ORDER")}), flush=True)
    wait_file(sys.argv[1])
""")


def submit(d, src, release, **req):
    args = {"source": str(src), "python": PY, "command": ["hold.py", str(release)]}
    args.update(req)
    return d.rpc("run.submit", args)


def running(d, ids):
    return {i for i in ids if d.show(i)["status"] == "Running"}


def settle(d, ids, want, what):
    """Wait until exactly the runs in want are Running among ids, and stay so."""
    wait_for(lambda: running(d, ids) == set(want), what=what)
    time.sleep(0.5)
    assert running(d, ids) == set(want), what


def first_line(d, run):
    wait_for(lambda: d.logs(run), what="run %s to print" % run)
    return json.loads(d.logs(run)[0]["text"])


def test_cpus_two_run_alone_and_cpus_one_in_pairs(daemon_factory, make_tree, tmp_path):
    d = daemon_factory(max_runs=4, extra=["--cpus", "2"])
    src = make_tree({"hold.py": HOLD})
    big = [submit(d, src, tmp_path / ("big%d" % i), cpus=2)["id"] for i in range(2)]
    small = [submit(d, src, tmp_path / ("small%d" % i), cpus=1)["id"] for i in range(3)]
    everyone = big + small
    settle(d, everyone, {big[0]}, "the first 2-CPU run alone")
    (tmp_path / "big0").touch()
    settle(d, everyone, {big[1]}, "the second 2-CPU run alone")
    (tmp_path / "big1").touch()
    settle(d, everyone, set(small[:2]), "two 1-CPU runs at once")
    status = d.rpc("daemon.status")["resources"]
    assert status["cpus"] == {"total": 2, "reserved": 2, "free": 0}
    for i in range(3):
        (tmp_path / ("small%d" % i)).touch()
    for r in everyone:
        assert d.wait_terminal(r)["status"] == "Completed"
    assert d.rpc("daemon.status")["resources"]["cpus"]["reserved"] == 0


@pytest.mark.parametrize("req,words", [
    ({"cpus": 3}, "this machine has 2"),
    ({"mem": "100T"}, "memory"),
    ({"gpus": 1}, "GPU"),
    ({"gpu_mem": "1G"}, "GPU"),
    ({"mem": "lots"}, "size"),
    ({"cpus": 0}, "cpus"),
    ({"memory_gb": 1}, "cluster target"),
])
def test_requests_that_cannot_fit_are_refused(daemon_factory, make_tree, tmp_path, req, words):
    d = daemon_factory(extra=["--cpus", "2", "--gpus", "0"])
    src = make_tree({"hold.py": HOLD})
    with pytest.raises(ryclient.ProtocolError) as e:
        submit(d, src, tmp_path / "x", **req)
    assert e.value.code == "InvalidArgument"
    assert words in e.value.message, e.value.message
    assert d.rpc("run.list", {})["runs"] == []


def test_gpus_are_assigned_exactly_and_shared_by_memory(daemon_factory, make_tree, tmp_path):
    d = daemon_factory(max_runs=6, extra=["--cpus", "6", "--gpus", "2:16G"])
    src = make_tree({"hold.py": HOLD})
    whole = submit(d, src, tmp_path / "whole", gpus=1)["id"]
    seen = first_line(d, whole)
    assert seen == {"cuda": "GPU-runyard-declared-0", "order": "PCI_BUS_ID"}
    run = d.show(whole)
    assert run["request"] == {"cpus": 1, "mem": 0, "gpus": 1, "gpu_mem": 0}
    assert [g["uuid"] for g in run["allocation"]["gpus"]] == ["GPU-runyard-declared-0"]
    # Two 8G runs share the other GPU; a third 8G run waits for room.
    shared = [submit(d, src, tmp_path / ("s%d" % i), gpus=1, gpu_mem="8G")["id"]
              for i in range(3)]
    settle(d, [whole] + shared, {whole, shared[0], shared[1]}, "two runs on GPU 1")
    for s in shared[:2]:
        assert first_line(d, s)["cuda"] == "GPU-runyard-declared-1"
    gpus = d.rpc("daemon.status")["resources"]["gpus"]
    assert gpus[1]["holders"] == 2 and gpus[1]["memory_reserved"] == 16 << 30
    # A run without GPUs sees none, rather than GPU 0.
    plain = submit(d, src, tmp_path / "plain")["id"]
    assert first_line(d, plain)["cuda"] == ""
    (tmp_path / "s0").touch()
    wait_for(lambda: d.show(shared[2])["status"] == "Running", what="the third to start")
    assert first_line(d, shared[2])["cuda"] == "GPU-runyard-declared-1"
    for f in ("whole", "s1", "s2", "plain"):
        (tmp_path / f).touch()
    for r in [whole, plain] + shared:
        assert d.wait_terminal(r)["status"] == "Completed"


def test_a_cpu_run_passes_one_waiting_for_a_gpu(daemon_factory, make_tree, tmp_path):
    d = daemon_factory(max_runs=4, extra=["--cpus", "4", "--gpus", "1"])
    src = make_tree({"hold.py": HOLD})
    a = submit(d, src, tmp_path / "a", gpus=1)["id"]
    wait_for(lambda: d.show(a)["status"] == "Running", what="a to hold the GPU")
    b = submit(d, src, tmp_path / "b", gpus=1)["id"]
    c = submit(d, src, tmp_path / "c", cpus=1)["id"]
    settle(d, [a, b, c], {a, c}, "c to pass b, which waits for the GPU")
    assert d.show(b)["status"] == "Queued"
    (tmp_path / "a").touch()
    wait_for(lambda: d.show(b)["status"] == "Running", what="b to get the GPU")
    for f in ("b", "c"):
        (tmp_path / f).touch()
    for r in (a, b, c):
        assert d.wait_terminal(r)["status"] == "Completed"


def test_a_cpu_short_head_is_not_passed(daemon_factory, make_tree, tmp_path):
    d = daemon_factory(max_runs=4, extra=["--cpus", "2"])
    src = make_tree({"hold.py": HOLD})
    a = submit(d, src, tmp_path / "a", cpus=1)["id"]
    wait_for(lambda: d.show(a)["status"] == "Running", what="a to run")
    head = submit(d, src, tmp_path / "head", cpus=2)["id"]
    later = submit(d, src, tmp_path / "later", cpus=1)["id"]
    # later would fit, but it would take the CPU the head waits for.
    settle(d, [a, head, later], {a}, "nothing to pass the head")
    (tmp_path / "a").touch()
    settle(d, [a, head, later], {head}, "the head to start first")
    for f in ("head", "later"):
        (tmp_path / f).touch()
    for r in (head, later):
        assert d.wait_terminal(r)["status"] == "Completed"


def test_a_restart_keeps_devices_and_reservations(daemon_factory, make_tree, tmp_path):
    d = daemon_factory(max_runs=4, extra=["--cpus", "4", "--gpus", "2"])
    src = make_tree({"hold.py": HOLD})
    a = submit(d, src, tmp_path / "a", gpus=1, cpus=3)["id"]
    wait_for(lambda: d.show(a)["status"] == "Running", what="a to run")
    before = d.show(a)["allocation"]
    d.kill9()
    d.restart()
    assert d.show(a)["status"] == "Running"
    assert d.show(a)["allocation"] == before
    res = d.rpc("daemon.status")["resources"]
    assert res["cpus"]["reserved"] == 3
    assert [g["holders"] for g in res["gpus"]] == [1, 0]
    # The next run gets the other GPU, and cannot have 2 CPUs.
    b = submit(d, src, tmp_path / "b", gpus=1)["id"]
    assert first_line(d, b)["cuda"] == "GPU-runyard-declared-1"
    c = submit(d, src, tmp_path / "c", cpus=2)["id"]
    time.sleep(0.5)
    assert d.show(c)["status"] == "Queued"
    for f in ("a", "b", "c"):
        (tmp_path / f).touch()
    for r in (a, b, c):
        assert d.wait_terminal(r)["status"] == "Completed"


def test_after_waits_for_runs_and_cancels_on_the_wrong_end(daemon_factory, make_tree, tmp_path):
    d = daemon_factory(max_runs=4)
    src = make_tree({"hold.py": HOLD})
    a = submit(d, src, tmp_path / "a")["id"]
    b = submit(d, src, tmp_path / "b", after=[a])["id"]
    c = submit(d, src, tmp_path / "c", after=[a + ":fail"])["id"]
    e = submit(d, src, tmp_path / "e", after=[a + ":any", b])["id"]
    settle(d, [a, b, c, e], {a}, "only a to run")
    shown = d.show(b)["after"]
    assert shown == [{"run": a, "seq": d.show(a)["seq"], "when": "ok", "status": "Running"}]
    # Through a kill -9: the waits are in the store.
    d.kill9()
    d.restart()
    (tmp_path / "a").touch()
    assert d.wait_terminal(a)["status"] == "Completed"
    wait_for(lambda: d.show(b)["status"] == "Running", what="b to start after a")
    ended = d.wait_terminal(c)
    assert ended["status"] == "Canceled" and ended["error"]["code"] == "DependencyFailed"
    assert "#%d ended Completed" % d.show(a)["seq"] in ended["error"]["message"]
    assert d.show(e)["status"] == "Queued"  # still waits for b
    (tmp_path / "b").touch()
    wait_for(lambda: d.show(e)["status"] == "Running", what="e to start after a and b")
    (tmp_path / "e").touch()
    assert d.wait_terminal(e)["status"] == "Completed"


def test_after_a_sweep_and_bad_references(daemon_factory, make_tree, tmp_path):
    d = daemon_factory(max_runs=4)
    src = make_tree({"hold.py": HOLD})
    sweep = d.rpc("sweep.submit", {
        "source": str(src), "python": PY, "command": ["hold.py", str(tmp_path / "s")],
        "metric": "m", "goal": "maximize", "sampling": "grid",
        "params": {"--x": "choice(1, 2)"}})["id"]
    after = submit(d, src, tmp_path / "after", after=[sweep + ":any"])["id"]
    time.sleep(0.5)
    assert d.show(after)["status"] == "Queued"
    (tmp_path / "s").touch()
    wait_for(lambda: d.show(after)["status"] == "Running", what="the run after the sweep")
    (tmp_path / "after").touch()
    d.wait_terminal(after)
    for bad, code in [(["no_such_run"], "NotFound"), ([after + ":maybe"], "InvalidArgument"),
                      ("x", "InvalidArgument"), ([7], "InvalidArgument")]:
        with pytest.raises(ryclient.ProtocolError) as e:
            submit(d, src, tmp_path / "never", after=bad)
        assert e.value.code == code, e.value.message
    assert len(d.rpc("run.list", {})["runs"]) == 4  # the sweep, its two trials and one run


def test_cli_flags_show_and_status(daemon_factory, make_tree, tmp_path):
    d = daemon_factory(max_runs=4, extra=["--cpus", "4", "--gpus", "1:8G"])
    src = make_tree({"hold.py": HOLD})
    a = d.cli("submit", "--source", src, "--python", PY, "--cpus", "2", "--mem", "256M",
              "--gpus", "1", "--gpu-mem", "2G", "--", "hold.py", tmp_path / "a", json=True).json
    b = d.cli("submit", "--source", src, "--python", PY, "--after", a["id"] + ":any", "--",
              "hold.py", tmp_path / "b", json=True).json
    wait_for(lambda: d.show(a["id"])["status"] == "Running", what="a to run")
    run = d.show(a["id"])
    assert run["request"] == {"cpus": 2, "mem": 256 << 20, "gpus": 1, "gpu_mem": 2 << 30,
                              "bound": True}
    text = d.cli("show", a["id"]).stdout
    assert "2 CPUs, 256" in text and "1 GPU (2" in text, text
    assert "GPU-runyard-declared-0" in text, text
    text = d.cli("show", b["id"]).stdout
    assert "After:" in text and a["id"] in text and "needs any" in text, text
    status = d.cli("daemon", "status").stdout
    assert "CPUs:" in status and "2 reserved" in status and "GPU 0:" in status, status
    res = d.cli("submit", "--source", src, "--python", PY, "--gpus", "x", "--", "hold.py",
                check=False)
    assert res.rc != 0 and "--gpus" in res.stderr
    (tmp_path / "a").touch()
    (tmp_path / "b").touch()
    assert d.wait_terminal(b["id"])["status"] == "Completed"


ELEMENT = script("""
    import os, sys, time
    print("index", os.environ["RUNYARD_ARRAY_INDEX"], "arg", sys.argv[1], flush=True)
    time.sleep(0.3)
    sys.exit(1 if sys.argv[1] == "fail-4" else 0)
""")


def test_arrays_run_once_per_index_k_at_once(daemon_factory, make_tree):
    d = daemon_factory(max_runs=4)
    src = make_tree({"element.py": ELEMENT})
    res = d.cli("submit", "--source", src, "--python", PY, "--array", "0-5:2%2", "--",
                "element.py", "part-{index}", json=True).json
    assert res["kind"] == "array"
    most = 0
    while True:
        kids = d.rpc("run.list", {"parent": res["id"]})["runs"]
        most = max(most, sum(k["status"] not in TERMINAL for k in kids))
        if d.show(res["id"])["status"] in TERMINAL:
            break
        time.sleep(0.05)
    assert most <= 2
    assert d.show(res["id"])["status"] == "Completed"
    kids = d.rpc("run.list", {"parent": res["id"]})["runs"]
    texts = sorted(d.logs(k["id"])[0]["text"] for k in kids)
    assert texts == ["index 0 arg part-0", "index 2 arg part-2", "index 4 arg part-4"]
    listed = d.cli("runs", "--array", res["id"], json=True).json["runs"]
    assert sorted(k["id"] for k in listed) == sorted(k["id"] for k in kids)
    # An element that fails fails the array, with how many did not complete.
    bad = d.cli("submit", "--source", src, "--python", PY, "--array", "3-4", "--",
                "element.py", "fail-{index}", json=True).json
    wait_for(lambda: d.show(bad["id"])["status"] in TERMINAL, what="the array to end")
    shown = d.show(bad["id"])
    assert shown["status"] == "Failed" and shown["error"]["code"] == "ElementFailed"
    assert "1 of its 2" in shown["error"]["message"]
    for spec in ("5-1", "x", "0-3:0", "0-3%0", "0-200000"):
        r = d.cli("submit", "--source", src, "--python", PY, "--array", spec, "--",
                  "element.py", "x", check=False)
        assert r.rc != 0 and "array" in r.stderr, (spec, r)
