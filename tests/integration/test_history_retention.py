"""Retention rules (--keep-runs N per experiment, --keep-runs-days,
--keep-failed-days) applied at start: never to runs a model came from or
tagged keep; show says when a run is kept by rule; the bytes come back."""

import sqlite3
import subprocess
import time

from conftest import RUNYARDD, script, wait_for

WRITER = script("""
    import os, sys
    open("outputs/o.bin", "wb").write(os.urandom(100000))
    print("run", sys.argv[1])
    sys.exit(int(sys.argv[2]) if len(sys.argv) > 2 else 0)
""")


def run(d, src, tag, experiment="default", code=0):
    sub = d.submit(src, "w.py", tag, str(code), experiment=experiment)
    return d.wait_terminal(sub["id"])


def seqs(d):
    return sorted(r["seq"] for r in d.runs())


def age(d, seq, days):
    """As if the run was made and ended that many days ago (daemon stopped)."""
    con = sqlite3.connect(str(d.state_dir / "runyard.db"), isolation_level=None)
    t = time.time() - days * 86400
    con.execute("UPDATE runs SET created_at = ?, ended_at = ? WHERE seq = ?", (t, t + 1, seq))
    con.close()


def restart_with(d, *extra):
    d.stop()
    d.extra = list(extra)
    d.restart()


def test_keep_runs_per_experiment_keeps_models_and_tagged_runs(daemon, make_tree):
    src = make_tree({"w.py": WRITER})
    a = [run(daemon, src, "a%d" % i, experiment="A") for i in range(5)]
    b = [run(daemon, src, "b%d" % i, experiment="B") for i in range(2)]
    daemon.cli("tag", a[0]["id"], "keep=yes")
    daemon.cli("model", "register", "from-a1", "--run", a[1]["seq"], "--path", "outputs/o.bin")
    bytes_before = daemon.rpc("store.du")["blob_bytes"]
    restart_with(daemon, "--keep-runs", "2")
    want = sorted([a[0]["seq"], a[1]["seq"], a[3]["seq"], a[4]["seq"], b[0]["seq"],
                   b[1]["seq"]])
    wait_for(lambda: seqs(daemon) == want, what="retention at start")
    # a[2] went, and its output's bytes with the collection that follows
    wait_for(lambda: daemon.rpc("store.du")["blob_bytes"] <= bytes_before - 100000,
             what="the collection after retention")
    shown = daemon.show(a[0]["id"])["retention"]
    assert shown["kept"] is True and shown["reason"] == "tagged keep"
    shown = daemon.show(a[1]["id"])["retention"]
    assert shown["kept"] is True and shown["reason"] == "model from-a1:1 came from it"
    text = daemon.cli("show", a[1]["id"]).stdout
    assert "Retention:" in text and "kept by rule (model from-a1:1 came from it)" in text
    text = daemon.cli("show", a[4]["id"]).stdout
    assert "among the newest 2 of its experiment (0 newer)" in text
    # still the rule at the next start: nothing more goes
    restart_with(daemon, "--keep-runs", "2")
    time.sleep(0.5)
    assert seqs(daemon) == want


def test_keep_days_and_keep_failed_days(daemon, make_tree):
    src = make_tree({"w.py": WRITER})
    old_ok = run(daemon, src, "old-ok")
    old_failed = run(daemon, src, "old-failed", code=3)
    assert old_failed["status"] == "Failed"
    very_old = run(daemon, src, "very-old")
    tagged = run(daemon, src, "tagged")
    new = run(daemon, src, "new", code=1)
    daemon.cli("tag", tagged["id"], "keep=1")
    daemon.stop()
    for r, days in ((old_ok, 3), (old_failed, 3), (very_old, 40), (tagged, 40)):
        age(daemon, r["seq"], days)
    daemon.extra = ["--keep-failed-days", "2", "--keep-runs-days", "30"]
    daemon.restart()
    want = sorted([old_ok["seq"], tagged["seq"], new["seq"]])
    wait_for(lambda: seqs(daemon) == want, what="retention at start")
    shown = daemon.show(old_ok["id"])["retention"]
    assert shown["kept"] is False and shown["removed_after"]
    assert "removed after" in daemon.cli("show", old_ok["id"]).stdout
    # a failed run goes at the earlier of its two dates
    shown = daemon.show(new["id"])["retention"]
    assert shown["removed_after"] < daemon.show(old_ok["id"])["retention"]["removed_after"]
    assert "kept by rule (tagged keep)" in daemon.cli("show", tagged["id"]).stdout


def test_no_rules_no_retention_line(daemon, make_tree):
    src = make_tree({"w.py": WRITER})
    r = run(daemon, src, "x")
    assert daemon.show(r["id"])["retention"]["rules"] is False
    assert "Retention:" not in daemon.cli("show", r["id"]).stdout


def test_active_runs_are_never_removed_by_retention(daemon_factory, make_tree):
    src = make_tree({"w.py": WRITER, "sleep.py": "import time\ntime.sleep(60)\n"})
    d = daemon_factory()
    sleeper = d.submit(src, "sleep.py")
    d.wait_status(sleeper["id"], "Running")
    done = run(d, src, "done")
    d.stop()  # the sleeper outlives the daemon, under its supervisor
    age(d, sleeper["seq"], 100)
    age(d, done["seq"], 100)
    d.extra = ["--keep-runs-days", "1"]
    d.restart()
    wait_for(lambda: seqs(d) == [sleeper["seq"]], what="retention at start")
    d.cli("cancel", sleeper["id"])
    d.wait_terminal(sleeper["id"])


def test_bad_retention_options_stop_the_daemon_at_start(tmp_path):
    for opt, value, msg in (("--keep-runs", "0", "--keep-runs wants a number"),
                            ("--keep-runs", "many", "--keep-runs wants a number"),
                            ("--keep-runs-days", "-1", "--keep-runs-days wants a number of days"),
                            ("--keep-failed-days", "soon", "--keep-failed-days wants")):
        proc = subprocess.run([str(RUNYARDD), "--state-dir", str(tmp_path / "s"), opt, value],
                              capture_output=True, text=True, timeout=30)
        assert proc.returncode == 1 and msg in proc.stderr, (opt, value, proc.stderr)
