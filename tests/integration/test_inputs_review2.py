"""Second review of the inputs and datasets code: an upload to an HTTP
datastore has an overall time limit, a finished local upload found again
after a restart counts as done, and the temporaries of a mounted dataset
that a kill -9 left are swept at start. Loopback only."""

import http.server
import json
import os
import socketserver
import threading
import time

import pytest

from conftest import PY, script


class _PutServer(socketserver.ThreadingMixIn, http.server.HTTPServer):
    daemon_threads = True
    allow_reuse_address = True


def test_review2_http_upload_has_an_overall_time_limit(daemon_factory, make_tree):
    """A datastore that takes a PUT's body and then trickles its answer
    (faster than curl's stall limit, never done) kept the run in Finalizing,
    and a worker thread busy, for as long as it liked. The upload now ends at
    the daemon's --download-timeout with a message naming the URL and the
    limit."""
    stop = threading.Event()
    got = []

    class H(http.server.BaseHTTPRequestHandler):
        def log_message(self, *a):
            pass

        def do_PUT(self):
            n = int(self.headers.get("Content-Length", "0"))
            got.append((self.path, self.rfile.read(n), time.monotonic()))
            self.send_response(200)
            self.send_header("Content-Length", "100000")
            self.end_headers()
            try:
                while not stop.wait(0.2):
                    self.wfile.write(b"x")
                    self.wfile.flush()
            except OSError:
                pass  # the daemon gave up: what the test wants

    srv = _PutServer(("127.0.0.1", 0), H)
    threading.Thread(target=srv.serve_forever, daemon=True).start()
    try:
        daemon = daemon_factory(extra=["--download-timeout", "2"])
        s = make_tree({"o.py": script("""
            import os
            p = os.environ["RUNYARD_OUTPUT_model"]
            open(os.path.join(p, "w.bin"), "w").write("weights")
        """)}, name="s1")
        url = "http://127.0.0.1:%d/store" % srv.server_address[1]
        run = daemon.cli("submit", "--source", s, "--python", PY, "--output",
                         "model=%s" % url, "--", "o.py", json=True).json
        r = daemon.wait_terminal(run["id"], timeout=60)
        ended = time.monotonic()
        assert got, "no PUT came"
        assert got[0][:2] == ("/store/%s/w.bin" % run["id"], b"weights")
        # 2 s and some slack, far below curl's 60 s stall limit
        assert ended - got[0][2] < 20, ended - got[0][2]
        assert r["status"] == "Failed", r
        assert r["error"]["code"] == "FinalizationFailed", r
        msg = r["error"]["message"]
        assert "%s/%s/w.bin" % (url, run["id"]) in msg, msg
        assert "time limit of 2 s" in msg and "--download-timeout" in msg, msg
        o = r["outputs_to"][0]
        assert o["stored"] is None and "time limit of 2 s" in o["error"], o
    finally:
        stop.set()
        srv.shutdown()
        srv.server_close()


@pytest.mark.parametrize("planted,done", [
    ({"w.bin": "weights", "sub/x.txt": "abc"}, True),
    ({"w.bin": "weights", "sub/x.txt": "abd"}, False),  # same size, other bytes
    ({"w.bin": "weights", "sub/x.txt": "abc", "sub/more.txt": ""}, False),
    ({"w.bin": "weights"}, False),
    ({"w.bin": "weights", "sub/x.txt": "abc", ".git/HEAD": "x"}, False),
], ids=["same", "other-content", "extra-file", "missing-file", "extra-git"])
def test_review2_local_upload_found_done_after_a_restart(daemon, make_tree, tmp_path,
                                                         planted, done):
    """A daemon that dies after the final rename into DIR/<run-id> and before
    recording the upload finalizes the run again after the restart, and found
    DIR/<run-id> there: the run failed although its outputs were uploaded.
    DIR/<run-id> holding exactly the run's output files (paths, sizes,
    SHA-256) is now that upload, done; anything else is still never
    replaced. The script plants DIR/<run-id> as the earlier attempt left it."""
    store = tmp_path / "datastore"
    store.mkdir()
    s = make_tree({"o.py": script("""
        import json, os, sys
        dest = os.path.join(sys.argv[1], os.environ["RUNYARD_RUN_ID"])
        for rel, text in json.loads(sys.argv[2]).items():
            os.makedirs(os.path.dirname(os.path.join(dest, rel)), exist_ok=True)
            open(os.path.join(dest, rel), "w").write(text)
        p = os.environ["RUNYARD_OUTPUT_model"]
        os.mkdir(os.path.join(p, "sub"))
        open(os.path.join(p, "w.bin"), "w").write("weights")
        open(os.path.join(p, "sub", "x.txt"), "w").write("abc")
    """)}, name="s2")
    run = daemon.cli("submit", "--source", s, "--python", PY, "--output",
                     "model=%s" % store, "--", "o.py", str(store), json.dumps(planted),
                     json=True).json
    r = daemon.wait_terminal(run["id"])
    dest = store / run["id"]
    o = r["outputs_to"][0]
    assert [p.name for p in store.iterdir()] == [run["id"]]  # no temporaries left
    found = {str(p.relative_to(dest)): p.read_text() for p in dest.rglob("*") if p.is_file()}
    assert found == planted  # never replaced, in either case
    if done:
        assert r["status"] == "Completed", r
        assert o["stored"] == str(dest) and o["files"] == 2 and o["bytes"] == 10, o
        assert o.get("error") is None, o
    else:
        assert r["status"] == "Failed", r
        assert r["error"]["code"] == "FinalizationFailed", r
        assert "cannot rename" in o["error"] and "File exists" in o["error"], o
        assert o["stored"] is None, o


def test_review2_unfinished_dataset_trees_swept_at_start(daemon, make_tree):
    """A mounted dataset's tree is made as <state>/datasets/.<manifest>.<hex>
    and renamed; a kill -9 while it is made left the temporary for good. The
    daemon removes such names at start, and nothing else there."""
    ds = make_tree({"a.csv": "1,2\n", "sub/b.csv": "3,4\n"}, name="ds")
    v = daemon.cli("dataset", "register", "m", ds, json=True).json
    manifest = v["manifest"]
    s = make_tree({"l.py": script("""
        import os
        p = os.environ["RUNYARD_INPUT_data"]
        print(sorted(os.listdir(p)))
    """)}, name="s3")

    def mount_run():
        run = daemon.cli("submit", "--source", s, "--python", PY, "--input",
                         "data=dataset:m:mount", "--", "l.py", json=True).json
        r = daemon.wait_terminal(run["id"])
        assert r["status"] == "Completed", r
        return [l["text"] for l in daemon.logs(run["id"], "stdout")]

    assert mount_run() == ["['a.csv', 'sub']"]
    root = daemon.state_dir / "datasets"
    real = root / manifest
    assert real.is_dir(), sorted(p.name for p in root.iterdir())
    daemon.stop()
    # what a kill -9 in the middle of making a tree leaves: part of it,
    # read-only like the trees runs mount
    tmps = [root / (".%s.0badc0de" % manifest), root / (".%s.12345678" % ("ab" * 32))]
    for t in tmps:
        (t / "sub").mkdir(parents=True)
        (t / "sub" / "b.csv").write_text("3,")
        (t / "sub").chmod(0o555)
        t.chmod(0o555)
    # not of that pattern: left alone
    keep = [root / ("cd" * 32), root / (".%s" % manifest), root / (".%s.0BADC0DE" % manifest),
            root / (".%s.0badc0d" % manifest), root / (".%s.0badc0de.tmp" % manifest),
            root / ("%s.0badc0de" % manifest)]
    for k in keep:
        k.mkdir()
    daemon.start()
    left = sorted(p.name for p in root.iterdir())
    assert left == sorted([real.name] + [k.name for k in keep]), left
    assert sorted(str(p.relative_to(real)) for p in real.rglob("*")) == \
        ["a.csv", "sub", "sub/b.csv"]
    assert mount_run() == ["['a.csv', 'sub']"]
    for k in keep:
        k.rmdir()
