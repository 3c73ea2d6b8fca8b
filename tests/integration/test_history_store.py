"""The store's size known: runyard du, free space in daemon status, submits
refused below --min-free; the database vacuumed incrementally, with a
migration for stores made before."""

import sqlite3
import subprocess

from conftest import RUNYARDD, script

LOGGER = script("""
    import sys
    n = int(sys.argv[1])
    open("outputs/o.bin", "wb").write(b"x" * int(sys.argv[2]))
    for i in range(n):
        print("a fairly long log line to fill the database with, number", i)
""")


def test_du_by_kind_and_largest_experiments_and_runs(daemon, make_tree):
    src = make_tree({"w.py": LOGGER})
    small = daemon.submit(src, "w.py", "10", "1000", experiment="small")
    big = daemon.submit(src, "w.py", "5000", "3000000", experiment="big")
    for s in (small, big):
        assert daemon.wait_terminal(s["id"])["status"] == "Completed"
    du = daemon.cli("du", json=True).json
    kinds = du["kinds"]
    for k in ("blobs", "database"):
        assert kinds[k] > 0, (k, kinds)
    assert kinds["blobs"] >= 3000000
    assert du["total_bytes"] >= kinds["blobs"] + kinds["database"]
    assert du["log_bytes"] > 5000 * 40
    assert du["free_bytes"] > 0 and du["fs_bytes"] >= du["free_bytes"]
    assert [e["name"] for e in du["experiments"]] == ["big", "small"]
    assert du["runs"][0]["seq"] == big["seq"] and du["runs"][0]["outputs"] == 3000000
    one = daemon.cli("du", "--experiment", "small", json=True).json
    assert [r["seq"] for r in one["runs"]] == [small["seq"]]
    assert [e["name"] for e in one["experiments"]] == ["small"]
    text = daemon.cli("du").stdout
    assert "Largest experiments:" in text and "big" in text and "Free:" in text


def test_daemon_status_shows_free_space_and_warns_when_low(daemon_factory):
    d = daemon_factory()
    st = d.rpc("daemon.status")
    assert st["disk"]["free_bytes"] > 0 and st["disk"]["low"] is False
    text = d.cli("daemon", "status").stdout
    assert "Disk:" in text and "free of" in text and "warning" not in text
    low = daemon_factory(extra=["--warn-free", "100000T"])
    assert low.rpc("daemon.status")["disk"]["low"] is True
    assert "warning: free space is low" in low.cli("daemon", "status").stdout


def test_submits_are_refused_below_min_free(daemon_factory, make_tree):
    d = daemon_factory(extra=["--min-free", "100000T"])
    src = make_tree({"w.py": LOGGER})
    res = d.submit(src, "w.py", "1", "1", check=2)
    assert "below runyardd's --min-free" in res.stderr and "runyard gc" in res.stderr
    assert d.runs() == []
    assert d.rpc("store.du")["blob_count"] == 0  # nothing was stored
    st = d.cli("daemon", "status").stdout
    assert "submits are refused" in st
    # a dry run stores nothing, so it is still answered
    d.cli("submit", "--source", src, "--dry-run")
    ok = daemon_factory(extra=["--min-free", "0"])
    sub = ok.submit(src, "w.py", "1", "1")
    assert ok.wait_terminal(sub["id"])["status"] == "Completed"


def test_bad_free_space_options_stop_the_daemon_at_start(tmp_path):
    for opt, value in (("--min-free", "lots"), ("--warn-free", "-1G"), ("--min-free", "5Q")):
        proc = subprocess.run([str(RUNYARDD), "--state-dir", str(tmp_path / "s"), opt, value],
                              capture_output=True, text=True, timeout=30)
        assert proc.returncode == 1 and "wants a size" in proc.stderr, (opt, value, proc)


def db(daemon):
    return sqlite3.connect(str(daemon.state_dir / "runyard.db"), isolation_level=None)


def test_migration_makes_an_old_store_vacuum_incrementally(daemon, make_tree):
    src = make_tree({"w.py": LOGGER})
    sub = daemon.submit(src, "w.py", "100", "10")
    daemon.wait_terminal(sub["id"])
    con = db(daemon)
    latest = con.execute("PRAGMA user_version").fetchone()[0]
    assert con.execute("PRAGMA auto_vacuum").fetchone()[0] == 2  # INCREMENTAL from the start
    con.close()
    daemon.stop()
    # as a store made before the migration: no auto_vacuum, one version back
    con = db(daemon)
    con.execute("PRAGMA auto_vacuum = NONE")
    con.execute("VACUUM")
    con.execute("PRAGMA user_version = %d" % (latest - 1))
    assert con.execute("PRAGMA auto_vacuum").fetchone()[0] == 0
    con.close()
    daemon.restart()
    con = db(daemon)
    assert con.execute("PRAGMA auto_vacuum").fetchone()[0] == 2
    assert con.execute("PRAGMA user_version").fetchone()[0] == latest
    con.close()
    assert len(daemon.logs(sub["id"])) == 100


def test_deleting_history_shrinks_the_database_file(daemon, make_tree):
    src = make_tree({"w.py": LOGGER})
    subs = [daemon.submit(src, "w.py", "60000", "10") for _ in range(3)]
    for s in subs:
        assert daemon.wait_terminal(s["id"])["status"] == "Completed"
    daemon.stop()  # folds the WAL back: the file alone
    before = (daemon.state_dir / "runyard.db").stat().st_size
    daemon.restart()
    daemon.cli("rm", *[s["id"] for s in subs])
    daemon.cli("gc")
    daemon.stop()
    after = (daemon.state_dir / "runyard.db").stat().st_size
    print("\nrunyard.db: %d bytes before removing 3 runs of 60000 lines, %d after" % (
        before, after))
    assert after < before / 3, (before, after)
