"""runyard rm and experiments rm: ended runs leave the history with every
row of theirs; active runs, runs a model came from (without --force) and
bad input are refused with nothing changed."""

import sqlite3
import time

from conftest import PY, script, wait_for


def tree(make_tree, name="src"):
    return make_tree({
        "w.py": script("""
            import os, sys
            tag = sys.argv[1] if len(sys.argv) > 1 else "x"
            open("outputs/out-%s.bin" % tag, "wb").write(os.urandom(200000))
            open("outputs/model.txt", "w").write("model " + tag)
            for i in range(50):
                print("line", i, tag)
        """),
        "sleep.py": "import time\ntime.sleep(120)\n",
    }, name=name)


def done(daemon, src, tag, experiment="default"):
    sub = daemon.submit(src, "w.py", tag, experiment=experiment)
    run = daemon.wait_terminal(sub["id"])
    assert run["status"] == "Completed", run
    return run


def db_rows(daemon, seq):
    """How many rows of every table still name the run (a real look at the file)."""
    con = sqlite3.connect("file:%s?mode=ro" % (daemon.state_dir / "runyard.db"), uri=True)
    try:
        n = 0
        for table in ("runs", "transitions", "log_chunks", "artifacts", "run_tags",
                      "run_properties", "metrics", "run_attempts"):
            col = "seq" if table == "runs" else "run_seq"
            n += con.execute("SELECT COUNT(*) FROM %s WHERE %s = ?" % (table, col),
                             (seq,)).fetchone()[0]
        return n
    finally:
        con.close()


def test_rm_removes_ended_runs_and_their_rows(daemon, make_tree, tmp_path):
    src = tree(make_tree)
    r1, r2, r3 = (done(daemon, src, t) for t in "abc")
    daemon.cli("tag", r1["id"], "k=v")
    assert db_rows(daemon, r1["seq"]) > 0

    res = daemon.cli("rm", r1["seq"], json=True).json
    assert res["count"] == 1 and [r["id"] for r in res["runs"]] == [r1["id"]]
    assert res["frees"]["output_bytes"] >= 200000 and res["frees"]["log_bytes"] > 0
    assert db_rows(daemon, r1["seq"]) == 0
    shown = daemon.cli("show", r1["id"], check=2)
    assert "NotFound" in shown.stderr
    # the others are whole
    ids = [r["id"] for r in daemon.runs()]
    assert r1["id"] not in ids and r2["id"] in ids and r3["id"] in ids
    daemon.cli("outputs", r2["id"], "--download", tmp_path / "o2")
    assert (tmp_path / "o2" / "outputs" / "out-b.bin").stat().st_size == 200000 or \
        any(p.name == "out-b.bin" for p in (tmp_path / "o2").rglob("*"))
    # a range, in text
    text = daemon.cli("rm", "%d-%d" % (r2["seq"], r3["seq"])).stdout
    assert "removed #%d" % r2["seq"] in text and "removed #%d" % r3["seq"] in text
    assert daemon.runs() == []


def test_rm_dry_run_lists_and_changes_nothing(daemon, make_tree):
    src = tree(make_tree)
    runs = [done(daemon, src, t, experiment="e1") for t in "ab"]
    res = daemon.cli("rm", "--experiment", "e1", "--dry-run", json=True).json
    assert res["dry_run"] is True and res["count"] == 2
    assert res["frees"]["output_bytes"] >= 400000
    assert sorted(r["seq"] for r in res["runs"]) == sorted(r["seq"] for r in runs)
    assert len(daemon.runs()) == 2
    text = daemon.cli("rm", "--experiment", "e1", "--dry-run").stdout
    assert "would remove" in text and "Would remove 2 run(s)" in text
    assert len(daemon.runs()) == 2


def test_rm_refuses_active_runs_with_a_hint(daemon, make_tree):
    src = tree(make_tree)
    old = done(daemon, src, "a", experiment="mix")
    sub = daemon.submit(src, "sleep.py", experiment="mix")
    daemon.wait_status(sub["id"], "Running")
    res = daemon.cli("rm", sub["id"], old["id"], check=2)
    assert "cancel it first" in res.stderr and "nothing was removed" in res.stderr
    assert len(daemon.runs()) == 2
    # a selector keeps the active run and removes the rest
    res = daemon.cli("rm", "--experiment", "mix", json=True).json
    assert [r["seq"] for r in res["runs"]] == [old["seq"]]
    assert [s["seq"] for s in res["skipped"]] == [sub["seq"]]
    assert res["skipped"][0]["reason"] == "active"
    assert [r["id"] for r in daemon.runs()] == [sub["id"]]
    daemon.cli("cancel", sub["id"])
    daemon.wait_terminal(sub["id"])
    daemon.cli("rm", sub["id"])
    assert daemon.runs() == []


def test_rm_of_a_models_run_needs_force_and_the_model_keeps_its_files(daemon, make_tree,
                                                                     tmp_path):
    src = tree(make_tree)
    run = done(daemon, src, "m")
    daemon.cli("model", "register", "mm", "--run", run["seq"], "--path", "outputs/model.txt")
    res = daemon.cli("rm", run["seq"], check=2)
    assert "model mm:1 came from run" in res.stderr and "--force" in res.stderr
    assert len(daemon.runs()) == 1
    # a selector keeps it, with the reason
    res = daemon.cli("rm", "--status", "Completed", json=True).json
    assert res["count"] == 0 and res["skipped"][0]["reason"] == "model"
    res = daemon.cli("rm", run["seq"], "--force", json=True).json
    assert res["count"] == 1 and res["models_unlinked"] == 1
    model = daemon.cli("model", "show", "mm:1", json=True).json
    assert model["run"] is None
    assert model["properties"]["runyard.run_removed"] == run["id"]
    daemon.cli("gc")
    out = tmp_path / "m"
    daemon.cli("model", "download", "mm:1", out)
    assert (out / "model.txt").read_text() == "model m"


def test_rm_of_an_array_takes_its_children(daemon, make_tree):
    src = tree(make_tree)
    array = daemon.cli("submit", "--source", src, "--python", PY, "--array", "0-2", "--",
                       "w.py", "x", json=True).json
    daemon.wait_terminal(array["id"])
    runs = daemon.runs()
    assert len(runs) == 4
    child = next(r for r in runs if r["id"] != array["id"])
    # a child alone may go; its array stays
    daemon.cli("rm", child["id"])
    assert len(daemon.runs()) == 3
    res = daemon.cli("rm", array["seq"], json=True).json
    assert res["count"] == 3
    assert daemon.runs() == []


def test_experiments_rm(daemon, make_tree):
    src = tree(make_tree)
    done(daemon, src, "a", experiment="gone")
    done(daemon, src, "b", experiment="gone")
    keep = done(daemon, src, "c", experiment="stays")
    res = daemon.cli("experiments", "rm", "gone", "--dry-run", json=True).json
    assert res["count"] == 2
    assert len(daemon.runs()) == 3
    text = daemon.cli("experiments", "rm", "gone").stdout
    assert "Removed 2 run(s)" in text
    names = [e["name"] for e in daemon.cli("experiments", json=True).json["experiments"]]
    assert names == ["stays"]
    assert [r["id"] for r in daemon.runs()] == [keep["id"]]
    res = daemon.cli("experiments", "rm", "gone", check=2)
    assert "no experiment 'gone'" in res.stderr


def test_rm_by_date(daemon, make_tree):
    src = tree(make_tree)
    done(daemon, src, "a")
    assert daemon.cli("rm", "--before", "2000-01-01", check=2).stderr.count("no runs match")
    assert len(daemon.runs()) == 1
    res = daemon.cli("rm", "--before", "2999-01-01T00:00:00Z", json=True).json
    assert res["count"] == 1


def call_error(c, op, args):
    reply = c.request(op, args)
    assert not reply.get("ok"), (op, reply)
    return reply["error"]


def test_rm_bad_input_changes_nothing(daemon, make_tree):
    src = tree(make_tree)
    run = done(daemon, src, "a")
    before = daemon.runs()

    res = daemon.cli("rm", "999", check=2)
    assert "no run '999'" in res.stderr and "nothing was removed" in res.stderr
    res = daemon.cli("rm", run["seq"], "nope_1700000000_deadbeef", check=2)
    assert "no run" in res.stderr
    res = daemon.cli("rm", check=1)
    assert "which runs?" in res.stderr
    for bad in ("2026-13-01", "2026-02-30", "yesterday", "12x", "2026-01-01T25:00:00"):
        res = daemon.cli("rm", "--before", bad, check=1)
        assert "--before needs a date" in res.stderr, bad
    res = daemon.cli("rm", "5-2", check=1)
    assert "not a range" in res.stderr
    res = daemon.cli("rm", "--status", "Sleeping", check=2)
    assert "unknown status 'Sleeping'" in res.stderr
    res = daemon.cli("experiments", "rm", check=1)
    assert "which experiment?" in res.stderr

    c = daemon.client()
    for args, code in [
        ({}, "InvalidArgument"),
        ({"runs": "1"}, "InvalidArgument"),
        ({"runs": [1]}, "InvalidArgument"),
        ({"runs": [""]}, "InvalidArgument"),
        ({"runs": ["1"], "dry_run": "yes"}, "InvalidArgument"),
        ({"runs": ["1"], "force": 1}, "InvalidArgument"),
        ({"experiment": 7}, "InvalidArgument"),
        ({"before": "2026-01-01"}, "InvalidArgument"),
        ({"before": 12}, "InvalidArgument"),
        ({"parent": "no-such"}, "NotFound"),
        ({"parent": {}}, "InvalidArgument"),
        ({"runs": ["1"] * 100001}, "TooLarge"),
        ({"runs": ["x" * 300]}, "InvalidArgument"),
    ]:
        err = call_error(c, "run.rm", args)
        assert err["code"] == code, (args if len(str(args)) < 200 else "big", err)
    for args, code in [({}, "InvalidArgument"), ({"name": 3}, "InvalidArgument"),
                       ({"name": "zz"}, "NotFound"),
                       ({"name": "default", "dry_run": []}, "InvalidArgument")]:
        assert call_error(c, "experiment.rm", args)["code"] == code, args
    for op, args in [("store.gc", {"dry_run": "no"}), ("store.du", {"experiment": 1})]:
        assert call_error(c, op, args)["code"] == "InvalidArgument", op
    c.close()
    assert daemon.runs() == before
    assert db_rows(daemon, run["seq"]) > 0


def test_rm_of_many_runs_goes_in_steps_and_all_go(daemon_factory, make_tree):
    d = daemon_factory(max_runs=4)
    src = make_tree({"t.py": "print('hi')\n"})
    array = d.cli("submit", "--source", src, "--python", PY, "--array", "0-449", "--", "t.py",
                  json=True).json
    d.wait_terminal(array["id"], timeout=600)
    assert len(d.runs()) == 451
    # more than one transaction (200 runs each): the reply comes after the last
    res = d.cli("rm", array["seq"], "--dry-run", json=True).json
    assert res["count"] == 451 and len(d.runs()) == 451
    res = d.cli("rm", array["seq"], json=True).json
    assert res["count"] == 451 and len(res["runs"]) == 451
    assert d.runs() == []
    assert db_rows(d, array["seq"]) == 0
    d.cli("gc")


def test_rm_of_a_kept_run_removes_its_directory(daemon, make_tree):
    src = tree(make_tree)
    name = "e" * 200  # a long experiment name makes a long id
    sub = daemon.submit(src, "w.py", "k", keep=True, experiment=name)
    assert daemon.wait_terminal(sub["id"])["status"] == "Completed"
    run_dir = daemon.state_dir / "runs" / sub["id"]
    assert run_dir.is_dir()
    res = daemon.cli("rm", sub["id"], json=True).json
    assert res["runs"][0]["id"] == sub["id"]
    wait_for(lambda: not run_dir.exists(), what="the kept directory to go")


def test_kill9_during_a_removal_in_steps_leaves_a_consistent_store(daemon_factory, make_tree):
    d = daemon_factory(max_runs=4)
    src = make_tree({"t.py": "print('hi')\n"})
    array = d.cli("submit", "--source", src, "--python", PY, "--array", "0-599", "--", "t.py",
                  json=True).json
    d.wait_terminal(array["id"], timeout=600)
    c = d.client()
    watch = sqlite3.connect("file:%s?mode=ro" % (d.state_dir / "runyard.db"), uri=True)
    c.send({"id": 5, "op": "run.rm", "args": {"runs": [array["id"]]}})
    # kill as soon as the first step is committed, while the others wait
    end = time.monotonic() + 30
    while watch.execute("SELECT COUNT(*) FROM runs").fetchone()[0] == 601:
        assert time.monotonic() < end, "the removal never started"
    d.kill9()
    watch.close()
    c.close()
    d._drop_client()
    con = sqlite3.connect("file:%s?mode=ro" % (d.state_dir / "runyard.db"), uri=True)
    assert con.execute("PRAGMA integrity_check").fetchone()[0] == "ok"
    assert con.execute("PRAGMA foreign_key_check").fetchall() == []
    left = con.execute("SELECT COUNT(*) FROM runs").fetchone()[0]
    orphans = con.execute("SELECT COUNT(*) FROM runs WHERE parent_seq IS NULL AND kind = 'run'"
                          ).fetchone()[0]
    for table in ("transitions", "log_chunks", "artifacts", "metrics"):
        assert con.execute("SELECT COUNT(*) FROM %s WHERE run_seq NOT IN (SELECT seq FROM runs)"
                           % table).fetchone()[0] == 0, table
    con.close()
    # whole steps of 200, the array itself last: never children without it
    assert left in (401, 201, 1, 0), left
    assert orphans == 0
    print("\n%d of 601 runs left after kill -9 during rm" % left)
    d.restart()
    if left:
        res = d.cli("rm", array["id"], json=True).json
        assert res["count"] == left
    assert d.runs() == []
    rep = d.rpc("store.gc")
    assert rep["missing"] == 0


def test_rm_also_clears_per_run_tables_it_does_not_know(daemon, make_tree):
    """A table a later migration adds, keyed by run_seq or metric_id (SQLite
    may give a removed series' id again), loses the removed run's rows."""
    src = make_tree({"m.py": script("""
        from azureml.core import Run
        run = Run.get_context()
        for i in range(5):
            run.log("loss", 1.0 / (i + 1))
    """)})
    subs = [daemon.submit(src, "m.py") for _ in range(2)]
    for s in subs:
        assert daemon.wait_terminal(s["id"])["status"] == "Completed"
    wait_for(lambda: all(daemon.rpc("run.metrics", {"run": s["id"]})["metrics"] for s in subs),
             what="the metrics")
    daemon.stop()
    con = sqlite3.connect(str(daemon.state_dir / "runyard.db"), isolation_level=None)
    con.execute("CREATE TABLE later_per_run(run_seq INTEGER NOT NULL, x TEXT)")
    con.execute("CREATE TABLE later_per_metric(metric_id INTEGER NOT NULL, y TEXT)")
    for s in subs:
        con.execute("INSERT INTO later_per_run VALUES(?, 'x')", (s["seq"],))
        con.execute("INSERT INTO later_per_metric SELECT id, 'y' FROM metrics WHERE run_seq = ?",
                    (s["seq"],))
    con.close()
    daemon.restart()
    daemon.cli("rm", subs[0]["id"])
    con = sqlite3.connect("file:%s?mode=ro" % (daemon.state_dir / "runyard.db"), uri=True)
    assert con.execute("SELECT run_seq FROM later_per_run").fetchall() == [(subs[1]["seq"],)]
    left = con.execute("SELECT COUNT(*) FROM later_per_metric").fetchone()[0]
    mine = con.execute("SELECT COUNT(*) FROM metrics WHERE run_seq = ?",
                       (subs[1]["seq"],)).fetchone()[0]
    con.close()
    assert left == mine and mine >= 1
