"""runyard gc: blobs go by reachability from what the history refers to;
what is still referred to (runs' outputs and snapshots, models, dataset
versions) is never lost, not under concurrent submits and runs, not when
the daemon is killed during gc or rm."""

import base64
import hashlib
import os
import random
import sqlite3
import tarfile
import threading
import time

from conftest import script, wait_for

MB = 1024 * 1024


def sha(data):
    return hashlib.sha256(data).hexdigest()


WRITER = script("""
    import os, sys
    n, size, seed = int(sys.argv[1]), int(sys.argv[2]), sys.argv[3]
    import random
    rnd = random.Random(seed)
    for i in range(n):
        open("outputs/f%04d.bin" % i, "wb").write(rnd.randbytes(size))
    open("outputs/same.txt", "w").write("the same in every run\\n")
    print("wrote", n, "files of", size, "from", seed)
""")


def blob_bytes(daemon):
    du = daemon.rpc("store.du")
    return du["blob_bytes"], du["blob_count"], du


def verify_outputs(daemon, run):
    """Every output of the run reads back with its recorded hash."""
    arts = daemon.rpc("run.outputs", {"run": run})["artifacts"]
    for a in arts:
        data, off = b"", 0
        while True:
            chunk = daemon.rpc("artifact.read", {"run": run, "path": a["path"], "offset": off})
            part = base64.b64decode(chunk["data"])
            data += part
            off += len(part)
            if chunk["eof"]:
                break
        assert sha(data) == a["sha256"] and len(data) == a["size"], (run, a["path"])
    return len(arts)


def verify_snapshot(daemon, run, tmp_path):
    out = tmp_path / ("snap-%s.tar" % run)
    daemon.cli("snapshot", run, "-o", out)
    with tarfile.open(out) as t:
        for m in t.getmembers():
            if m.isfile():
                t.extractfile(m).read()
    out.unlink()


def consistent(daemon):
    """A collection in dry run finds nothing missing."""
    rep = daemon.rpc("store.gc", {"dry_run": True})
    assert rep["missing"] == 0, rep
    return rep


def test_rm_half_then_gc_frees_their_bytes_and_keeps_the_rest(daemon, make_tree, tmp_path):
    shared = make_tree({"w.py": WRITER, "data.bin": os.urandom(300000)}, name="shared")
    runs = []
    for i in range(6):
        # runs 0, 2, 4 from a source of their own (a unique file each)
        src = shared if i % 2 else make_tree({"w.py": WRITER, "own.bin": os.urandom(400000)},
                                             name="own%d" % i)
        sub = daemon.submit(src, "w.py", "2", str(MB // 2), "seed%d" % i)
        runs.append(daemon.wait_terminal(sub["id"]))
        assert runs[-1]["status"] == "Completed", runs[-1]
    # a model from a run that goes, and a dataset version
    daemon.cli("model", "register", "kept-model", "--run", runs[0]["seq"], "--path",
               "outputs/f0000.bin")
    ds = make_tree({"a.csv": "1,2\n" * 1000, "b/c.csv": "3,4\n"}, name="ds")
    daemon.cli("dataset", "register", "dsname", ds)

    before, count_before, du_before = blob_bytes(daemon)
    text = daemon.cli("du").stdout
    assert "Store:" in text and "blobs" in text and "Largest runs:" in text
    # half of the runs: 0, 2 and 4, each with 1 MB of outputs and 400 kB of source
    gone = [runs[i] for i in (0, 2, 4)]
    res = daemon.cli("rm", *[r["seq"] for r in gone], "--force", json=True).json
    assert res["count"] == 3
    assert res["frees"]["output_bytes"] == 3 * MB - MB // 2  # f0000 of run 0 is the model's
    rep = daemon.cli("gc", json=True).json
    after, count_after, du_after = blob_bytes(daemon)
    freed = before - after
    print("\ndu blob bytes before %d (%d blobs), after %d (%d blobs): freed %d; gc said %d "
          "bytes in %d blobs" % (before, count_before, after, count_after, freed,
                                 rep["bytes"], rep["blobs"]))
    assert rep["bytes"] == freed and rep["blobs"] == count_before - count_after
    # their outputs but the model's file, their sources' own files, their manifests
    want = 3 * MB - MB // 2 + 3 * 400000
    assert want <= freed < want + 64 * 1024, (want, freed)
    kinds = {k["kind"]: k for k in rep["kinds"]}
    assert kinds["snapshot file"]["blobs"] == 3 and kinds["snapshot manifest"]["blobs"] == 3
    assert rep["missing"] == 0 and rep["kept_in_use"] == 0

    # nothing still referred to is lost
    for r in runs:
        if r in gone:
            continue
        assert verify_outputs(daemon, r["id"]) == 3
        verify_snapshot(daemon, r["id"], tmp_path)
    out = tmp_path / "model"
    daemon.cli("model", "download", "kept-model:1", out)
    assert (out / "f0000.bin").stat().st_size == MB // 2
    out = tmp_path / "dsout"
    daemon.cli("dataset", "download", "dsname:1", "-o", out)
    assert (out / "a.csv").read_text() == "1,2\n" * 1000
    # a run from the shared source after gc still runs (its stat cache is not trusted)
    sub = daemon.submit(shared, "w.py", "1", "10", "again")
    assert daemon.wait_terminal(sub["id"])["status"] == "Completed"
    verify_outputs(daemon, sub["id"])
    # a second collection has nothing left to do
    again = daemon.cli("gc", json=True).json
    assert again["blobs"] == 0 and again["missing"] == 0
    text = daemon.cli("gc", "--dry-run").stdout
    assert "Would remove 0 blob(s)" in text


def test_gc_dry_run_removes_nothing(daemon, make_tree):
    src = make_tree({"w.py": WRITER})
    sub = daemon.submit(src, "w.py", "3", "1000", "x")
    daemon.wait_terminal(sub["id"])
    daemon.cli("rm", sub["id"])
    before = blob_bytes(daemon)[:2]
    rep = daemon.cli("gc", "--dry-run", json=True).json
    assert rep["dry_run"] is True and rep["blobs"] >= 5  # 4 outputs, w.py, manifest
    assert blob_bytes(daemon)[:2] == before
    rep2 = daemon.cli("gc", json=True).json
    assert rep2["blobs"] == rep["blobs"] and rep2["bytes"] == rep["bytes"]


def test_gc_in_a_loop_while_submits_and_runs_go_on(daemon_factory, make_tree, tmp_path):
    d = daemon_factory(max_runs=2)
    base = tmp_path / "loop-src"
    base.mkdir()
    (base / "w.py").write_text(WRITER)
    (base / "shared.bin").write_bytes(os.urandom(200000))
    stop = threading.Event()
    stats = {"loops": 0, "removed": 0, "kept": 0, "errors": []}

    def collect():
        c = d.client()
        try:
            while not stop.is_set():
                try:
                    rep = c.call("store.gc")
                except Exception as e:  # noqa: BLE001 - reported below
                    stats["errors"].append(repr(e))
                    return
                stats["loops"] += 1
                stats["removed"] += rep["blobs"]
                stats["kept"] += rep["kept_in_use"]
        finally:
            c.close()

    t = threading.Thread(target=collect)
    t.start()
    subs = []
    try:
        for i in range(40):
            # a changed file and unchanged ones, and outputs whose contents
            # recur (a removed run's blobs are put again by a later run)
            (base / "changing.txt").write_text("iteration %d\n" % i)
            subs.append(d.submit(base, "w.py", "3", "20000", "seed%d" % (i % 3)))
            if i % 4 == 3:
                # remove the oldest ended ones: garbage for the collector
                for s in subs[:-2]:
                    if d.status(s["id"]) in ("Completed", "Failed", "Canceled"):
                        d.cli("rm", s["id"])
                        subs.remove(s)
        for s in subs:
            r = d.wait_terminal(s["id"])
            assert r["status"] == "Completed", (r, d.log_tail())
    finally:
        stop.set()
        t.join(120)
    assert not stats["errors"], stats
    assert stats["loops"] >= 3, stats
    print("\n%d collections during 40 submits removed %d blobs, kept %d in use" % (
        stats["loops"], stats["removed"], stats["kept"]))
    for s in subs:
        assert verify_outputs(d, s["id"]) == 4
        verify_snapshot(d, s["id"], tmp_path)
    consistent(d)
    # and a run submitted after all that still starts from a whole snapshot
    sub = d.submit(base, "w.py", "1", "10", "after")
    assert d.wait_terminal(sub["id"])["status"] == "Completed"


def db_check(daemon):
    """The database file itself: whole, and no row naming a run that is gone."""
    con = sqlite3.connect("file:%s?mode=ro" % (daemon.state_dir / "runyard.db"), uri=True)
    try:
        assert con.execute("PRAGMA integrity_check").fetchone()[0] == "ok"
        assert con.execute("PRAGMA foreign_key_check").fetchall() == []
        for table in ("transitions", "log_chunks", "artifacts", "metrics", "run_tags",
                      "run_properties"):
            n = con.execute("SELECT COUNT(*) FROM %s WHERE run_seq NOT IN "
                            "(SELECT seq FROM runs)" % table).fetchone()[0]
            assert n == 0, table
        return con.execute("SELECT COUNT(*) FROM runs").fetchone()[0]
    finally:
        con.close()


def test_kill9_during_gc_leaves_a_consistent_store_and_a_second_gc_finishes(daemon, make_tree,
                                                                             tmp_path):
    src = make_tree({"w.py": WRITER})
    keep = daemon.submit(src, "w.py", "300", "2000", "keep")
    junk = daemon.submit(src, "w.py", "3000", "500", "junk")
    for s in (keep, junk):
        assert daemon.wait_terminal(s["id"])["status"] == "Completed"
    daemon.cli("rm", junk["id"])
    garbage = daemon.rpc("store.gc", {"dry_run": True})["blobs"]
    assert garbage >= 3000
    epoch = (daemon.state_dir / "blobs.epoch").read_text()
    rnd = random.Random(1)
    left = garbage
    for attempt in range(3):
        c = daemon.client()
        c.send({"id": 99, "op": "store.gc"})
        time.sleep(rnd.uniform(0.02, 0.15))
        daemon.kill9()
        c.close()
        daemon._drop_client()
        daemon.restart()
        rep = consistent(daemon)
        assert verify_outputs(daemon, keep["id"]) == 301
        assert rep["blobs"] <= left
        left = rep["blobs"]
    # a collection that starts always writes a new epoch first
    assert (daemon.state_dir / "blobs.epoch").read_text() != epoch
    rep = daemon.cli("gc", json=True).json
    assert rep["missing"] == 0
    assert daemon.rpc("store.gc", {"dry_run": True})["blobs"] == 0
    assert verify_outputs(daemon, keep["id"]) == 301
    verify_snapshot(daemon, keep["id"], tmp_path)
    daemon.stop()
    db_check(daemon)


def test_kill9_during_rm_is_all_or_nothing(daemon, make_tree):
    src = make_tree({"w.py": WRITER + "for i in range(20000):\n    print('log line', i)\n"})
    subs = [daemon.submit(src, "w.py", "2", "1000", "s%d" % i) for i in range(6)]
    for s in subs:
        assert daemon.wait_terminal(s["id"])["status"] == "Completed"
    rnd = random.Random(2)
    for attempt in range(3):
        left = [r["id"] for r in daemon.runs()]
        if not left:
            break
        c = daemon.client()
        c.send({"id": 7, "op": "run.rm", "args": {"runs": left[:2]}})
        time.sleep(rnd.uniform(0.0, 0.03))
        daemon.kill9()
        c.close()
        daemon._drop_client()
        n = db_check(daemon)
        assert n in (len(left), len(left) - 2), (n, left)
        daemon.restart()
        for r in daemon.runs():
            assert len(daemon.logs(r["id"])) >= 20000
            verify_outputs(daemon, r["id"])
    daemon.cli("rm", "--status", "Completed", check=False)
    consistent(daemon)
    daemon.cli("gc")
    daemon.stop()
    assert db_check(daemon) == 0
