"""Robustness of inputs, outputs and downloads (the review of the inputs,
fetch and datasets code): what a remote server, a run or a corrupted file
controls never grows the daemon without bound nor leaks into its log, and an
upload never replaces what is already in a datastore. Loopback only."""

import hashlib
import http.server
import os
import signal
import socketserver
import threading
import time

import pytest

from conftest import PY, script
import ryclient


class _PutServer(socketserver.ThreadingMixIn, http.server.HTTPServer):
    daemon_threads = True
    allow_reuse_address = True


def put_server(body):
    """A loopback HTTP datastore that accepts every PUT and answers it with
    `body` (bytes) as the response."""
    got = []

    class H(http.server.BaseHTTPRequestHandler):
        def log_message(self, *a):
            pass

        def do_PUT(self):
            n = int(self.headers.get("Content-Length", "0"))
            got.append((self.path, self.rfile.read(n)))
            self.send_response(201)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

    srv = _PutServer(("127.0.0.1", 0), H)
    threading.Thread(target=srv.serve_forever, daemon=True).start()
    return srv, got


def test_review_http_datastore_response_body_not_in_daemon_log(daemon, make_tree):
    """The body a datastore answers a PUT with is the server's: it was
    written to the daemon's stdout (curl's default), so a server could fill
    the daemon's log without bound."""
    marker = b"DATASTORE-SAYS-" + b"x" * 64
    srv, got = put_server(marker * 2000)
    try:
        s = make_tree({"o.py": script("""
            import os
            p = os.environ["RUNYARD_OUTPUT_model"]
            open(os.path.join(p, "w.bin"), "w").write("weights")
        """)}, name="s")
        url = "http://127.0.0.1:%d/store" % srv.server_address[1]
        run = daemon.cli("submit", "--source", s, "--python", PY, "--output",
                         "model=%s" % url, "--", "o.py", json=True).json
        r = daemon.wait_terminal(run["id"])
        assert r["status"] == "Completed", r
        assert [p for p, _ in got] == ["/store/%s/w.bin" % run["id"]]
        assert got[0][1] == b"weights"
        assert "DATASTORE-SAYS" not in daemon.log_text(), "the response body is in the log"
    finally:
        srv.shutdown()
        srv.server_close()


def test_review_datastore_existing_empty_dir_not_replaced(daemon, make_tree, tmp_path):
    """docs/inputs.md: an existing DIR/<run-id> is never overwritten. An
    empty one was: rename(2) replaces an empty directory."""
    store = tmp_path / "datastore"
    store.mkdir()
    s = make_tree({"o.py": script("""
        import os, sys
        os.mkdir(os.path.join(sys.argv[1], os.environ["RUNYARD_RUN_ID"]))
        p = os.environ["RUNYARD_OUTPUT_model"]
        open(os.path.join(p, "w.bin"), "w").write("weights")
    """)}, name="s2")
    run = daemon.cli("submit", "--source", s, "--python", PY, "--output",
                     "model=%s" % store, "--", "o.py", str(store), json=True).json
    r = daemon.wait_terminal(run["id"])
    assert r["status"] == "Failed", r
    assert r["error"]["code"] == "FinalizationFailed", r
    dest = store / run["id"]
    assert dest.is_dir() and list(dest.iterdir()) == []  # left as it was
    assert [p.name for p in store.iterdir()] == [run["id"]]  # no temporaries left
    o = r["outputs_to"][0]
    assert o["stored"] is None and o["error"], o


from httpserver import http_server  # noqa: E402,F401


def test_review_dataset_register_downloads_bounded(daemon, http_server, tmp_path):
    """A client could start any number of downloads by sending register
    after register, each with up to 64 URLs (and die after each: they went
    on). Over the cap a registration is refused at once, nothing changed."""
    www = tmp_path / "www"
    www.mkdir(exist_ok=True)
    http_server.slow_chunk, http_server.slow_delay = 1024, 0.2
    for i in range(65):
        (www / ("f%d.bin" % i)).write_bytes(os.urandom(128 * 1024))
    c = daemon.client()
    c.send({"id": 1, "op": "dataset.register",
            "args": {"name": "big", "sources": [http_server.url("/slow/f%d.bin" % i)
                                                for i in range(64)]}})
    time.sleep(1)  # the downloads are going (each takes about 25 s)
    with pytest.raises(ryclient.ProtocolError) as e:
        daemon.rpc("dataset.register",
                   {"name": "more", "sources": [http_server.url("/slow/f64.bin")]})
    assert e.value.code == "Conflict", e.value
    assert "in progress" in str(e.value.message)
    # local sources still register meanwhile
    f = tmp_path / "local.txt"
    f.write_text("x")
    assert daemon.rpc("dataset.register", {"name": "loc", "sources": [str(f)]})["version"] == 1
    names = [d["name"] for d in daemon.rpc("dataset.list")["datasets"]]
    assert names == ["loc"]
    # the client dies with its downloads in flight; the daemon goes on
    c.abort()
    assert daemon.rpc("dataset.list")["datasets"][0]["name"] == "loc"


def test_review_stop_during_a_stalled_http_upload(daemon, make_tree):
    """A datastore that takes a PUT's body and never answers held a worker
    thread, and with it the daemon's stop, for a minute per file (curl's
    low-speed limit) with nothing to interrupt it."""
    hold = threading.Event()
    got = []

    class H(http.server.BaseHTTPRequestHandler):
        def log_message(self, *a):
            pass

        def do_PUT(self):
            n = int(self.headers.get("Content-Length", "0"))
            got.append(self.rfile.read(n))
            hold.wait(120)  # never answers while the test runs

    srv = _PutServer(("127.0.0.1", 0), H)
    threading.Thread(target=srv.serve_forever, daemon=True).start()
    try:
        s = make_tree({"o.py": script("""
            import os
            p = os.environ["RUNYARD_OUTPUT_model"]
            for i in range(5):
                open(os.path.join(p, "w%d.bin" % i), "w").write("weights")
        """)}, name="s3")
        url = "http://127.0.0.1:%d/store" % srv.server_address[1]
        run = daemon.cli("submit", "--source", s, "--python", PY, "--output",
                         "model=%s" % url, "--", "o.py", json=True).json
        deadline = time.monotonic() + 60
        while not got and time.monotonic() < deadline:
            time.sleep(0.1)
        assert got, "no PUT came"
        assert daemon.status(run["id"]) == "Finalizing"
        daemon.stop(timeout=15)
        assert len(got) == 1  # it stopped at the file it was sending
    finally:
        hold.set()
        srv.shutdown()
        srv.server_close()


def test_review_upload_removes_its_stale_temporaries(daemon, make_tree, tmp_path):
    """An upload killed with the daemon (kill -9 while it materialises)
    leaves DIR/.<run-id>.<random>.tmp; the run is finalized again after the
    restart under a new random name, and the old one stayed in the user's
    datastore for good. The script plants one as a stand-in (and another
    run's, which must stay)."""
    store = tmp_path / "datastore"
    store.mkdir()
    other = store / ".other_1_00000000.0badc0de.tmp"
    other.mkdir()
    s = make_tree({"o.py": script("""
        import os, sys
        stale = os.path.join(sys.argv[1], ".%s.0badc0de.tmp" % os.environ["RUNYARD_RUN_ID"])
        os.makedirs(os.path.join(stale, "deep"))
        open(os.path.join(stale, "deep", "half.bin"), "w").write("half")
        p = os.environ["RUNYARD_OUTPUT_model"]
        open(os.path.join(p, "w.bin"), "w").write("weights")
    """)}, name="s5")
    run = daemon.cli("submit", "--source", s, "--python", PY, "--output",
                     "model=%s" % store, "--", "o.py", str(store), json=True).json
    r = daemon.wait_terminal(run["id"])
    assert r["status"] == "Completed", r
    assert (store / run["id"] / "w.bin").read_text() == "weights"
    assert sorted(p.name for p in store.iterdir()) == sorted([run["id"], other.name])


def _big_tree(root, n=3000):
    root.mkdir()
    for i in range(n):
        d = root / ("d%02d" % (i % 50))
        d.mkdir(exist_ok=True)
        (d / ("f%d.txt" % i)).write_text("x%d\n" % i * 50)
    return root


def test_review_cancel_and_stop_while_inputs_are_placed(daemon, make_tree, tmp_path):
    """A run canceled while its inputs are copied in the thread pool ends
    Canceled; the daemon stopped while another is placed exits cleanly and
    the run is prepared again after the restart (ASan: no use after free)."""
    big = _big_tree(tmp_path / "big")
    s = make_tree({"r.py": "import os\nprint(len(os.listdir('inputs/big')))\n"}, name="s6")
    args = ["submit", "--source", s, "--python", PY]
    ins = ["--input", "big=%s" % big, "--input", "b2=%s" % big, "--input", "b3=%s" % big]
    run = daemon.cli(*args, *ins, "--", "r.py", json=True).json
    deadline = time.monotonic() + 60
    while daemon.status(run["id"]) == "Queued" and time.monotonic() < deadline:
        time.sleep(0.01)
    daemon.cli("cancel", run["id"])
    r = daemon.wait_terminal(run["id"])
    assert r["status"] == "Canceled", r
    run2 = daemon.cli(*args, *ins, "--", "r.py", json=True).json
    while daemon.status(run2["id"]) == "Queued" and time.monotonic() < deadline:
        time.sleep(0.01)
    daemon.stop()
    daemon.start()
    r2 = daemon.wait_terminal(run2["id"])
    # docs/inputs.md: a run that had not started is prepared again
    assert r2["status"] == "Completed", r2
    assert [l["text"] for l in daemon.logs(run2["id"], stream="stdout")] == ["50"]


def test_review_kill9_while_inputs_are_placed(daemon, make_tree, tmp_path):
    """kill -9 while a run's inputs are copied: after the restart the run is
    prepared again with the same inputs, and what the first attempt left
    half-copied does not fail it ("already exists") nor leak into it."""
    big = _big_tree(tmp_path / "big")
    s = make_tree({"r.py": script("""
        import os
        for n in ("big", "b2", "b3"):
            print(n, sum(len(f) for _, _, f in os.walk(os.path.join("inputs", n))))
    """)}, name="s7")
    ins = ["--input", "big=%s" % big, "--input", "b2=%s" % big, "--input", "b3=%s" % big]
    run = daemon.cli("submit", "--source", s, "--python", PY, *ins, "--", "r.py",
                     json=True).json
    deadline = time.monotonic() + 60
    while daemon.status(run["id"]) == "Queued" and time.monotonic() < deadline:
        time.sleep(0.005)
    time.sleep(0.2)
    daemon.kill9()
    daemon.start()
    r = daemon.wait_terminal(run["id"])
    assert r["status"] == "Completed", r
    out = [l["text"] for l in daemon.logs(run["id"], stream="stdout")]
    assert out == ["big 3000", "b2 3000", "b3 3000"], out


@pytest.mark.parametrize("source", ["http://127.0.0.1:1/" + "a" * 100_000,
                                    "/" + "d/" * 50_000], ids=["url", "path"])
def test_review_dataset_oversized_source_refused(daemon, source):
    """A dataset source of any length was taken (a run input's is at most
    4096 bytes): a 100 KB URL was fetched, retried, and quoted whole in the
    answer."""
    with pytest.raises(ryclient.ProtocolError) as e:
        daemon.rpc("dataset.register", {"name": "x", "sources": [source]})
    assert e.value.code == "TooLarge", e.value
    assert len(str(e.value.message)) < 1000
    assert daemon.rpc("dataset.list")["datasets"] == []


def test_review_build_line_without_newline_is_split(daemon_factory, tmp_path, make_tree):
    """A build that prints a line longer than a log line may be (pip
    quoting a 100 KB requirement; 128 KiB is what one argument may hold):
    the environment stream stores it in pieces of at most 64 KiB, nothing
    is lost, and the run's error quotes a bounded tail."""
    d = daemon_factory(env={"PATH": "/usr/bin:/bin:" + os.environ.get("PATH", "")})
    req = tmp_path / "reqs.txt"
    req.write_text("x" * 100_000 + "==1\n")
    d.cli("env", "create", "huge", "--pip-requirements", req, "--python", PY,
          "--system-site-packages", "--var", "PIP_NO_INDEX=1", json=True)
    src = make_tree({"main.py": "print('ran')\n"}, name="s8")
    r = d.cli("submit", "--source", src, "--environment", "huge", "--", "main.py",
              json=True).json
    run = d.wait_terminal(r["id"], timeout=300)
    assert run["status"] == "Failed", run
    assert len(run["error"]["message"]) < 4000, len(run["error"]["message"])
    env = [l["text"] for l in d.logs(r["id"], stream="environment")]
    assert env, run["error"]["message"][:500]
    assert max(len(t) for t in env) <= 65536
    assert max(len(t) for t in env) == 65536  # a piece of the long line
    assert sum(t.count("x") for t in env) >= 100_000


def test_review_cancel_one_sharer_then_stop_mid_download(daemon, http_server, make_tree):
    """Two runs share one slow download; one is canceled (the transfer goes
    on for the other), then the daemon is stopped with the transfer in
    flight (ASan: no use after free). After the restart the run is
    prepared again, resumes the partial, and gets the exact body."""
    http_server.slow_chunk, http_server.slow_delay = 4096, 0.1
    body = os.urandom(120 * 1024)
    (http_server.root / "big.bin").write_bytes(body)
    url = http_server.url("/slow/big.bin")
    s = make_tree({"r.py": "print(len(open('inputs/big','rb').read()))\n"}, name="s9")
    ids = [daemon.cli("submit", "--source", s, "--python", PY, "--input", "big=%s" % url,
                      "--", "r.py", json=True).json["id"] for _ in range(2)]

    def downloading():
        return all(daemon.show(i)["inputs"][0].get("progress", {}).get("bytes")
                   for i in ids)
    deadline = time.monotonic() + 60
    while not downloading() and time.monotonic() < deadline:
        time.sleep(0.05)
    daemon.cli("cancel", ids[0])
    assert daemon.wait_terminal(ids[0], timeout=20)["status"] == "Canceled"
    assert daemon.status(ids[1]) == "Preparing"
    daemon.stop()
    daemon.start()
    r = daemon.wait_terminal(ids[1])
    assert r["status"] == "Completed", r
    assert r["inputs"][0]["hash"] == hashlib.sha256(body).hexdigest()
    assert [l["text"] for l in daemon.logs(ids[1], stream="stdout")] == [str(len(body))]


def test_review_cancel_and_stop_during_an_environment_build(daemon_factory, tmp_path,
                                                            make_tree):
    """One run waiting for a build is canceled, the daemon is stopped while
    the build goes on for another (ASan: the waiters and the tail timer
    let go cleanly); after the restart the build runs again and the run
    completes with the build's lines in its environment stream."""
    d = daemon_factory(env={"PATH": "/usr/bin:/bin:" + os.environ.get("PATH", "")})
    req = tmp_path / "r.txt"
    req.write_text("joblib\n")
    e = d.cli("env", "create", "slowbuild", "--pip-requirements", req, "--python", PY,
              "--system-site-packages", "--var", "PIP_NO_INDEX=1", json=True).json
    src = make_tree({"main.py": "print('ran')\n"}, name="s10")
    ids = [d.cli("submit", "--source", src, "--environment", "slowbuild", "--", "main.py",
                 json=True).json["id"] for _ in range(2)]
    deadline = time.monotonic() + 120
    while not d.logs(ids[1], stream="environment") and time.monotonic() < deadline:
        time.sleep(0.05)
    ready = d.state_dir / "envs" / e["hash"] / ".ready"
    assert not ready.exists(), "the build ended before the test could stop it"
    d.cli("cancel", ids[0])
    assert d.wait_terminal(ids[0], timeout=60)["status"] == "Canceled"
    d.stop()
    d.start()
    r = d.wait_terminal(ids[1], timeout=300)
    assert r["status"] == "Completed", r
    assert [l["text"] for l in d.logs(ids[1], stream="stdout")] == ["ran"]
    assert d.logs(ids[1], stream="environment")


def test_review_stop_while_a_deploy_waits_for_its_environment(daemon_factory, tmp_path,
                                                              make_tree):
    """model deploy --environment waits for the build; the daemon stopped
    meanwhile records no service and exits cleanly (ASan) with the build's
    waiters let go; a client that died first changes nothing."""
    from test_models import register_file
    d = daemon_factory(env={"PATH": "/usr/bin:/bin:" + os.environ.get("PATH", "")})
    model = tmp_path / "m.bin"
    model.write_bytes(b"model")
    register_file(d, "m", model)
    req = tmp_path / "r.txt"
    req.write_text("joblib\n")
    d.cli("env", "create", "svcenv", "--pip-requirements", req, "--python", PY,
          "--system-site-packages", "--var", "PIP_NO_INDEX=1", json=True)
    src = make_tree({"score.py": "def init():\n    pass\n\ndef run(d):\n    return d\n"},
                    name="s11")
    args = {"model": "m:1", "service": "svc", "entry_script": "score.py",
            "source": str(src), "environment": "svcenv"}
    dying = d.client()
    dying.send({"id": 1, "op": "model.deploy", "args": dict(args, service="svc2")})
    c = d.client()
    c.send({"id": 7, "op": "model.deploy", "args": args})
    time.sleep(1.0)
    dying.abort()
    os.kill(d.pid, signal.SIGTERM)
    try:
        reply = c.read_reply(timeout=60)
        assert reply["id"] == 7 and not reply["ok"], reply
        assert reply["error"]["code"] == "ShuttingDown", reply
    except ryclient.Closed:
        pass  # the connection closed first, as every connection does at a stop
    assert d.wait_exit(60) == 0
    d.start()
    assert d.rpc("service.list")["services"] == []


def test_review_kill9_during_dataset_registration(daemon, tmp_path):
    """kill -9 while a dataset is registered: after the restart either no
    version is there or a whole one is; a new registration gets the next
    number and every listed version shows all its files."""
    big = _big_tree(tmp_path / "big", n=4000)
    c = daemon.client()
    c.send({"id": 1, "op": "dataset.register", "args": {"name": "big", "sources": [str(big)]}})
    time.sleep(0.3)
    daemon._drop_client()
    daemon.kill9()
    daemon.start()
    before = daemon.rpc("dataset.list")["datasets"]
    assert before == [] or [v["version"] for v in before] == [1], before
    v = daemon.rpc("dataset.register", {"name": "big", "sources": [str(big)]})
    assert v["version"] == len(before) + 1 and v["files"] == 4000, v
    for ver in daemon.rpc("dataset.list")["datasets"]:
        shown = daemon.rpc("dataset.show", {"dataset": "big:%d" % ver["version"]})
        assert shown["files"] == 4000 and len(shown["file_list"]) == 4000


@pytest.mark.parametrize("field,value", [
    ("outputs", {"name": "o", "dir": "http://127.0.0.1:1/a b"}),
    ("outputs", {"name": "o", "dir": "http://127.0.0.1:1/a\r\nX-Evil: 1"}),
    ("inputs", {"name": "i", "source": "http://127.0.0.1:1/a\nb"}),
], ids=["output-space", "output-crlf", "input-newline"])
def test_review_urls_with_white_space_refused_at_submit(daemon, make_tree, field, value):
    """A datastore URL with white space or a line break was accepted: the
    run ran to its end and failed in Finalizing, when curl refused the URL.
    Refused at submit now, nothing created."""
    s = make_tree({"x.py": "print(1)\n"}, name="s12")
    with pytest.raises(ryclient.ProtocolError) as e:
        daemon.rpc("run.submit", {"source": str(s), "command": ["x.py"], "python": PY,
                                  field: [value]})
    assert e.value.code == "InvalidArgument", e.value
    assert daemon.rpc("run.list")["runs"] == []
