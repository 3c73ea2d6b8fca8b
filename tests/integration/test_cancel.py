"""Cancel: SIGTERM to the process group, SIGKILL after the grace period."""

import time

import ryclient
from conftest import DEADLINE, WAIT_FILE, parse_ts, pid_alive, script, wait_for


def test_cancel_running_run_sends_sigterm(daemon, make_tree, ext):
    marker = ext / "got-term"
    src = make_tree({"trap.py": script("""
        import signal, sys, time
        marker = sys.argv[1]
        def on_term(signum, frame):
            open(marker, "w").write("TERM")
            sys.exit(143)
        signal.signal(signal.SIGTERM, on_term)
        print("ready", flush=True)
        while True:
            time.sleep(0.05)
    """)})
    sub = daemon.submit(src, "trap.py", str(marker))
    daemon.wait_text(sub["id"], "ready")
    res = daemon.cli("cancel", sub["id"], json=True)
    assert res.json["id"] == sub["id"]
    assert res.json["status"] in ("CancelRequested", "Canceled")
    run = daemon.wait_terminal(sub["id"])
    assert run["status"] == "Canceled", run
    assert marker.read_text() == "TERM", "the process did not get SIGTERM"
    tr = run["transitions"]
    assert tr.get("CancelRequested") and tr.get("Canceled")
    assert parse_ts(tr["Running"]) <= parse_ts(tr["CancelRequested"]) <= parse_ts(tr["Canceled"])
    # wait reports a canceled run as a failure.
    daemon.cli("wait", sub["id"], check=2)


def test_cancel_kills_a_term_ignoring_process_after_grace(daemon_factory, make_tree, ext):
    d = daemon_factory(grace=1)
    pidfile = ext / "pid"
    src = make_tree({"stubborn.py": script("""
        import os, signal, sys, time
        signal.signal(signal.SIGTERM, signal.SIG_IGN)
        open(sys.argv[1] + ".tmp", "w").write(str(os.getpid()))
        os.rename(sys.argv[1] + ".tmp", sys.argv[1])
        print("ready", flush=True)
        while True:
            time.sleep(0.05)
    """)})
    sub = d.submit(src, "stubborn.py", str(pidfile))
    d.wait_text(sub["id"], "ready")
    pid = int(pidfile.read_text())
    t0 = time.monotonic()
    d.cli("cancel", sub["id"])
    run = d.wait_terminal(sub["id"])
    assert run["status"] == "Canceled", run
    assert run["signal"] == 9, "expected SIGKILL, got signal %r" % run["signal"]
    assert not pid_alive(pid), "the process survived the cancel"
    assert time.monotonic() - t0 < DEADLINE


def test_cancel_of_a_queued_run_is_immediate(daemon_factory, make_tree, ext):
    d = daemon_factory(max_runs=1)
    go = ext / "go"
    src = make_tree({"block.py": WAIT_FILE + "import sys\nwait_file(sys.argv[1])\n",
                     "never.py": "print('should never run')\n"})
    blocker = d.submit(src, "block.py", str(go))
    d.wait_status(blocker["id"], "Running")
    queued = d.submit(src, "never.py")
    res = d.cli("cancel", str(queued["seq"]), json=True)
    assert res.json["status"] == "Canceled"
    run = d.show(queued["id"])
    assert run["status"] == "Canceled"
    assert not run["transitions"].get("Running")
    go.write_text("")
    assert d.wait_terminal(blocker["id"])["status"] == "Completed"
    assert d.show(queued["id"])["status"] == "Canceled"
    assert d.logs(queued["id"]) == []


def test_cancel_of_a_finished_run_is_a_conflict(daemon, make_tree):
    src = make_tree({"a.py": "print(1)\n"})
    sub = daemon.submit(src, "a.py")
    daemon.wait_terminal(sub["id"])
    daemon.cli("cancel", sub["id"], check=2)
    try:
        daemon.rpc("run.cancel", {"run": sub["id"]})
        raise AssertionError("cancel of a finished run succeeded")
    except ryclient.ProtocolError as e:
        assert e.code == "Conflict"
    assert daemon.show(sub["id"])["status"] == "Completed"


def test_cancel_stops_the_whole_process_group(daemon, make_tree, ext):
    pidfile = ext / "child"
    src = make_tree({"spawn.sh": script("""
        #!/bin/sh
        sleep 600 &
        echo $! > "$1"
        echo ready
        wait
    """)})
    sub = daemon.submit(src, "spawn.sh", str(pidfile))
    daemon.wait_text(sub["id"], "ready")
    child = int(pidfile.read_text())
    daemon.cli("cancel", sub["id"])
    assert daemon.wait_terminal(sub["id"])["status"] == "Canceled"
    wait_for(lambda: not pid_alive(child), what="the run's child process to die")


def test_cancel_before_the_supervisor_is_set_up_is_a_cancel(daemon_factory, make_tree, ext):
    # A cancel's SIGTERM that lands between the fork and the supervisor's
    # first instruction kills the supervisor with the default action. A
    # wrapper that waits before becoming the supervisor makes that window
    # wide: the run must end Canceled, not failed with ExecutionFailed.
    from conftest import RUNYARDD
    mark = ext / "supervisor-started"
    wrapper = ext / "slow-supervisor"
    wrapper.write_text("#!/bin/sh\n: > %s\nsleep 2\nexec %s \"$@\"\n"
                       % (mark, RUNYARDD.parent / "runyard-supervisor"))
    wrapper.chmod(0o755)
    d = daemon_factory(env={"RUNYARD_SUPERVISOR": str(wrapper)})
    src = make_tree({"hello.py": "print('hello')\n"})
    sub = d.submit(src, "hello.py")
    wait_for(mark.exists, what="the supervisor's start")
    d.cli("cancel", sub["id"])
    run = d.wait_terminal(sub["id"])
    assert run["status"] == "Canceled", run
    assert not run.get("error"), run["error"]
