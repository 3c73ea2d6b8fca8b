"""Daemon restarts: queued runs stay queued, running runs are re-attached,
runs whose process vanished fail with DaemonRestart, nothing stored is lost."""

import os
import signal

from conftest import WAIT_FILE, parse_ts, pid_alive, script, wait_for

PHASES = WAIT_FILE + script("""
    import os, sys
    go1, down_done, go2 = sys.argv[1:4]
    for i in range(100):
        print("before-%d" % i)
    wait_file(go1)
    for i in range(100):
        print("down-%d" % i)
    open(down_done, "w").close()
    wait_file(go2)
    for i in range(100):
        print("after-%d" % i)
""")


def test_restart_reattaches_running_run_and_keeps_queue(daemon_factory, make_tree, ext):
    d = daemon_factory(max_runs=1)
    go1, down_done, go2 = ext / "go1", ext / "down-done", ext / "go2"
    src = make_tree({"phases.py": PHASES, "next.py": "print('queued one ran')\n"})
    running = d.submit(src, "phases.py", str(go1), str(down_done), str(go2))
    queued = d.submit(src, "next.py")
    wait_for(lambda: d.show(running["id"])["log_lines"] == 100, what="the first 100 lines stored")
    assert d.status(queued["id"]) == "Queued"

    d.kill9()
    # While the daemon is down the run goes on printing.
    go1.write_text("")
    wait_for(lambda: down_done.exists(), what="the run to print while the daemon is down")
    d.start()

    assert d.status(running["id"]) == "Running"
    assert d.status(queued["id"]) == "Queued"
    go2.write_text("")

    run = d.wait_terminal(running["id"])
    assert run["status"] == "Completed", run
    assert run["exit_code"] == 0
    lines = d.logs(running["id"])
    want = (["before-%d" % i for i in range(100)] + ["down-%d" % i for i in range(100)]
            + ["after-%d" % i for i in range(100)])
    assert [l["text"] for l in lines] == want
    assert [l["seq"] for l in lines] == list(range(1, 301))

    nxt = d.wait_terminal(queued["id"])
    assert nxt["status"] == "Completed", nxt
    assert [l["text"] for l in d.logs(queued["id"])] == ["queued one ran"]
    assert parse_ts(nxt["transitions"]["Running"]) >= parse_ts(run["transitions"]["Finalizing"])


def test_restart_with_a_vanished_process_fails_daemon_restart(daemon, make_tree, ext):
    pidfile = ext / "pid"
    src = make_tree({"hang.py": WAIT_FILE + script("""
        import os, sys
        open(sys.argv[1] + ".tmp", "w").write(str(os.getpid()))
        os.rename(sys.argv[1] + ".tmp", sys.argv[1])
        for i in range(20):
            print("kept-%d" % i)
        wait_file(sys.argv[1] + ".never")
    """)})
    sub = daemon.submit(src, "hang.py", str(pidfile))
    wait_for(lambda: daemon.show(sub["id"])["log_lines"] == 20, what="20 lines stored")
    pid = int(pidfile.read_text())

    daemon.kill9()
    # Kill the run's supervisor(s) and the run's process group behind the daemon's back.
    pgid = os.getpgid(pid)
    for p in daemon.leftovers():
        if p != pid:
            os.kill(p, signal.SIGKILL)
    os.killpg(pgid, signal.SIGKILL)
    wait_for(lambda: not pid_alive(pid), what="the run's process to die")
    wait_for(lambda: not any(pid_alive(p) for p in daemon.leftovers()), what="supervisors to die")

    daemon.start()
    run = daemon.wait_terminal(sub["id"])
    assert run["status"] == "Failed", run
    assert run["error"]["code"] == "DaemonRestart"
    assert [l["text"] for l in daemon.logs(sub["id"])] == ["kept-%d" % i for i in range(20)]


def test_graceful_restart_keeps_history(daemon, make_tree):
    src = make_tree({"a.py": "print('remembered')\n"})
    sub = daemon.submit(src, "a.py", experiment="keep")
    before = daemon.wait_terminal(sub["id"])
    arts_before = daemon.rpc("run.outputs", {"run": sub["id"]})
    daemon.restart()
    after = daemon.show(sub["id"])
    assert after == before
    assert daemon.rpc("run.outputs", {"run": sub["id"]}) == arts_before
    assert [l["text"] for l in daemon.logs(sub["id"])] == ["remembered"]
    # Sequence numbers go on after a restart.
    nxt = daemon.submit(src, "a.py", experiment="keep")
    assert nxt["seq"] == sub["seq"] + 1
    daemon.wait_terminal(nxt["id"])
