"""Retries (issue #17; docs/scheduling.md, "Retries"): `--retries N
[--retry-on fail|oom|restart|any]`. A failed attempt is kept in the history
as an attempt of the same run, with its error and the range of log lines it
wrote, and the run goes back to Queued for the next one; the run's own
status, error and outputs are those of its last attempt. Canceled attempts
are never retried, and a retry is as crash-safe as the run: through kill -9
of the daemon, and for an attempt lost to the restart itself.
"""

import os
import signal

import pytest

import ryclient
from conftest import DEADLINE, PY, WAIT_FILE, pid_alive, script, wait_for

# Counts its attempts in the file argv[1]; fails (exit 3) until attempt
# argv[2], printing which attempt it is. With a path argv[3], it first writes its
# pid and its supervisor's and waits for that file to be removed.
FLAKY = WAIT_FILE + script("""
    import os, sys, time
    counter, good = sys.argv[1], int(sys.argv[2])
    n = int(open(counter).read()) + 1 if os.path.exists(counter) else 1
    open(counter, "w").write(str(n))
    print("attempt", n, flush=True)
    if len(sys.argv) > 3 and sys.argv[3].startswith("/") and n == 1:
        hold = sys.argv[3]
        open(hold + ".tmp", "w").write("%d %d" % (os.getpid(), os.getppid()))
        os.rename(hold + ".tmp", hold)
        while os.path.exists(hold):
            time.sleep(0.02)
    if n < good:
        print("failing", flush=True)
        sys.exit(3)
    os.makedirs("outputs", exist_ok=True)
    open("outputs/result.txt", "w").write("attempt %d" % n)
    print("done", flush=True)
""")


def submit(d, src, *args, **kw):
    req = {"source": str(src), "python": PY, "command": ["flaky.py", *map(str, args)]}
    req.update(kw)
    return d.rpc("run.submit", req)


def texts(d, run):
    return [l["text"] for l in d.logs(run)]


def test_a_failed_attempt_is_kept_and_the_run_tried_again(daemon, make_tree, ext):
    src = make_tree({"flaky.py": FLAKY})
    sub = submit(daemon, src, ext / "n", 2, retries=2)
    run = daemon.wait_terminal(sub["id"])
    assert run["status"] == "Completed", run
    assert run["attempt"] == 2 and run["retries"] == 2 and run["retry_on"] == "fail"
    assert run["error"] is None and run["exit_code"] == 0
    (a,) = run["attempts"]
    assert a["attempt"] == 1 and a["status"] == "Failed"
    assert a["error"]["code"] == "UserError" and a["exit_code"] == 3
    assert a["first_line"] == 1 and a["lines"] == 2
    assert {"Queued", "Running"} <= set(a["transitions"]) and a["started_at"] and a["ended_at"]
    # Both attempts' lines, in order, numbered on; the run's transitions
    # are its last attempt's.
    assert texts(daemon, sub["id"]) == ["attempt 1", "failing", "attempt 2", "done"]
    assert [l["seq"] for l in daemon.logs(sub["id"])] == [1, 2, 3, 4]
    assert run["transitions"]["Queued"] >= a["ended_at"]
    # The outputs are the last attempt's.
    arts = daemon.rpc("run.outputs", {"run": sub["id"]})["artifacts"]
    assert [x["path"] for x in arts if x["path"].startswith("outputs/")] == ["outputs/result.txt"]
    out = daemon.cli("show", sub["id"]).stdout
    assert "Attempt:    2 of at most 3 (retried on fail)" in out, out
    assert "#1 Failed: UserError - the process exited with code 3; log lines 1-2" in out, out


def test_retries_used_up_end_the_run_failed_with_every_attempt(daemon, make_tree, ext):
    src = make_tree({"flaky.py": FLAKY})
    sub = submit(daemon, src, ext / "n", 99, retries=2)
    run = daemon.wait_terminal(sub["id"])
    assert run["status"] == "Failed" and run["error"]["code"] == "UserError", run
    assert run["attempt"] == 3
    assert [a["attempt"] for a in run["attempts"]] == [1, 2]
    assert [a["first_line"] for a in run["attempts"]] == [1, 3]
    assert (ext / "n").read_text() == "3"
    daemon.cli("wait", sub["id"], check=2)


def test_no_retries_by_default(daemon, make_tree, ext):
    src = make_tree({"flaky.py": FLAKY})
    sub = submit(daemon, src, ext / "n", 2)
    run = daemon.wait_terminal(sub["id"])
    assert run["status"] == "Failed" and run["attempt"] == 1 and run["attempts"] == []
    assert run["retries"] == 0


def test_retry_on_oom_leaves_a_program_failure_alone(daemon, make_tree, ext):
    src = make_tree({"flaky.py": FLAKY})
    sub = submit(daemon, src, ext / "n", 2, retries=3, retry_on="oom")
    run = daemon.wait_terminal(sub["id"])
    assert run["status"] == "Failed" and run["attempts"] == [], run
    assert run["retry_on"] == "oom"


HOG = script("""
    import time
    chunks = [b"\\x01" * (10 << 20) for _ in range(40)]
    time.sleep(30)
""")


def test_retry_on_oom_tries_again_after_running_out_of_memory(daemon, make_tree):
    src = make_tree({"hog.py": HOG})
    sub = daemon.rpc("run.submit", {"source": str(src), "python": PY, "command": ["hog.py"],
                                    "mem": "64M", "retries": 1, "retry_on": ["oom"]})
    run = daemon.wait_terminal(sub["id"])
    assert run["status"] == "Failed" and run["error"]["code"] == "OutOfMemory", run
    assert run["attempt"] == 2
    (a,) = run["attempts"]
    assert a["error"]["code"] == "OutOfMemory" and a["limits"]["mem"] == 64 << 20


def test_a_canceled_attempt_is_not_retried(daemon, make_tree, ext):
    src = make_tree({"flaky.py": FLAKY})
    hold = ext / "hold"
    sub = submit(daemon, src, ext / "n", 9, hold, retries=3)
    wait_for(hold.exists, what="the first attempt")
    daemon.cli("cancel", sub["id"])
    run = daemon.wait_terminal(sub["id"])
    assert run["status"] == "Canceled" and run["attempts"] == [] and run["attempt"] == 1


def test_a_retry_holds_through_kill9_of_the_daemon(daemon, make_tree, ext):
    src = make_tree({"flaky.py": FLAKY})
    hold = ext / "hold"
    sub = submit(daemon, src, ext / "n", 2, hold, retries=1)
    wait_for(hold.exists, what="the first attempt")
    pid, sup = map(int, hold.read_text().split())
    daemon.kill9()
    # The attempt fails while the daemon is down; its supervisor records it.
    hold.unlink()
    wait_for(lambda: not pid_alive(sup), what="the first attempt's end")
    daemon.start()
    run = daemon.wait_terminal(sub["id"])
    assert run["status"] == "Completed", run
    (a,) = run["attempts"]
    assert a["error"]["code"] == "UserError" and a["exit_code"] == 3
    assert texts(daemon, sub["id"]) == ["attempt 1", "failing", "attempt 2", "done"]
    # And once more across a restart: what is stored stays.
    daemon.restart()
    again = daemon.show(sub["id"])
    assert again["attempts"] == run["attempts"] and again["status"] == "Completed"


@pytest.mark.parametrize("retry_on,retried", [("restart", True), (None, False)])
def test_an_attempt_lost_to_a_restart(daemon, make_tree, ext, retry_on, retried):
    # The daemon is killed, then the run's supervisor and program too, as a
    # machine's reboot would: the attempt leaves no exit status. Only
    # --retry-on restart (or any) tries it again.
    src = make_tree({"flaky.py": FLAKY})
    hold = ext / "hold"
    kw = {"retries": 1}
    if retry_on:
        kw["retry_on"] = retry_on
    sub = submit(daemon, src, ext / "n", 1, hold, **kw)
    wait_for(hold.exists, what="the first attempt")
    pid, sup = map(int, hold.read_text().split())
    daemon.kill9()
    os.kill(sup, signal.SIGKILL)
    os.kill(pid, signal.SIGKILL)
    wait_for(lambda: not pid_alive(sup) and not pid_alive(pid), what="the attempt's end")
    daemon.start()
    run = daemon.wait_terminal(sub["id"])
    if retried:
        assert run["status"] == "Completed", run
        (a,) = run["attempts"]
        assert a["error"]["code"] == "DaemonRestart", a
    else:
        assert run["status"] == "Failed" and run["error"]["code"] == "DaemonRestart", run
        assert run["attempts"] == []


@pytest.mark.parametrize("args,message", [
    ({"retries": -1}, "retries"),
    ({"retries": 101}, "retries"),
    ({"retries": "2"}, "retries"),
    ({"retries": 1.5}, "retries"),
    ({"retries": 1, "retry_on": "bogus"}, "unknown kind 'bogus'"),
    ({"retries": 1, "retry_on": "fail,"}, "retry_on"),
    ({"retries": 1, "retry_on": "fail,,oom"}, "retry_on"),
    ({"retries": 1, "retry_on": ""}, "empty"),
    ({"retries": 1, "retry_on": [1]}, "retry_on"),
    ({"retries": 1, "retry_on": {"a": 1}}, "retry_on"),
    ({"retry_on": "oom"}, "needs 'retries'"),
])
def test_bad_retry_arguments_are_refused_and_nothing_is_made(daemon, make_tree, ext, args,
                                                            message):
    src = make_tree({"flaky.py": FLAKY})
    before = len(daemon.runs())
    with pytest.raises(ryclient.ProtocolError) as e:
        submit(daemon, src, ext / "n", 1, **args)
    assert e.value.code == "InvalidArgument" and message in str(e.value), str(e.value)
    assert len(daemon.runs()) == before


def test_cli_flags_and_their_errors(daemon, make_tree, ext):
    src = make_tree({"flaky.py": FLAKY})
    res = daemon.cli("submit", "--source", src, "--python", PY, "--retries", "1",
                     "--retry-on", "fail,restart", "--", "flaky.py", str(ext / "n"), "2",
                     json=True)
    run = daemon.wait_terminal(res.json["id"])
    assert run["status"] == "Completed" and run["retry_on"] == "any" and run["attempt"] == 2
    bad = daemon.cli("submit", "--source", src, "--retries", "x", "--", "flaky.py", check=False)
    assert bad.rc != 0 and "--retries needs a number from 0 to 100" in bad.stderr
    bad = daemon.cli("submit", "--source", src, "--retries", "1", "--retry-on", "often", "--",
                     "flaky.py", check=False)
    assert bad.rc != 0 and "unknown kind 'often'" in bad.stderr


def test_sweep_children_take_the_retries(daemon, make_tree, ext):
    src = make_tree({"flaky.py": FLAKY})
    res = daemon.rpc("sweep.submit", {
        "source": str(src), "python": PY, "command": ["flaky.py", str(ext / "n"), "2"],
        "metric": "m", "goal": "maximize", "sampling": "grid",
        "params": {"--unused": "choice(1)"}, "retries": 1})
    wait_for(lambda: daemon.rpc("sweep.show", {"sweep": res["id"]})["status"] != "Running",
             what="the sweep's end")
    (kid,) = daemon.rpc("run.list", {"parent": res["id"], "limit": 10})["runs"]
    run = daemon.show(kid["id"])
    assert run["retries"] == 1 and run["attempt"] == 2 and run["status"] == "Completed", run
