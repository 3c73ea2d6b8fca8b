"""Run inputs and outputs (docs/inputs.md): local files and directories
copied or mounted read-only, file:// and http:// URLs fetched once and
cached, checksums, progress on the run's `input` stream, what show records,
outputs uploaded to a datastore directory, and every bad input refused with
nothing changed. Loopback only."""

import hashlib
import json
import os
import pathlib
import threading

import pytest

from conftest import PY, script, wait_for
import ryclient

try:
    import httpserver  # noqa: F401  (the fetch branch's loopback server)
    HAVE_HTTP = True
except ImportError:
    HAVE_HTTP = False

READER = script("""
    import json, os, sys
    out = {}
    for k, v in sorted(os.environ.items()):
        if k.startswith("RUNYARD_INPUT_") or k.startswith("RUNYARD_OUTPUT_"):
            out[k] = v
    print("ENV " + json.dumps(out))
    for name in sys.argv[1:]:
        p = os.path.join("inputs", name)
        if os.path.isdir(p):
            for root, dirs, files in os.walk(p):
                for f in sorted(files):
                    q = os.path.join(root, f)
                    print("FILE %s %s" % (q, open(q).read().strip()))
        else:
            print("FILE %s %s" % (p, open(p).read().strip()))
""")


def sha(data):
    return hashlib.sha256(data).hexdigest()


def run_with(daemon, src, *flags, args=(), check=True):
    res = daemon.cli("submit", "--source", src, "--python", PY, *flags, "--", "read.py",
                     *args, json=True, check=check)
    return res.json if check is True else res


def lines(daemon, run, stream=None):
    return [l["text"] for l in daemon.logs(run, stream)]


@pytest.fixture
def src(make_tree):
    return make_tree({"read.py": READER}, name="src")


def test_inputs_local_file_and_directory(daemon, src, make_tree, tmp_path):
    data = make_tree({"a.txt": "alpha\n", "sub/b.txt": "beta\n"}, name="data")
    single = tmp_path / "one.csv"
    single.write_text("x,y\n")
    run = run_with(daemon, src, "--input", "train=%s" % data, "--input", "one=%s" % single,
                   "--input", "dl=%s:download" % single, args=["train", "one", "dl"])
    r = daemon.wait_terminal(run["id"])
    assert r["status"] == "Completed", r
    out = lines(daemon, run["id"], "stdout")
    env = json.loads([l for l in out if l.startswith("ENV ")][0][4:])
    assert env["RUNYARD_INPUT_train"].endswith("/work/inputs/train")
    assert env["RUNYARD_INPUT_one"].endswith("/work/inputs/one")
    assert "FILE inputs/train/a.txt alpha" in out
    assert "FILE inputs/train/sub/b.txt beta" in out
    assert "FILE inputs/one x,y" in out
    assert "FILE inputs/dl/one.csv x,y" in out
    ins = {i["name"]: i for i in r["inputs"]}
    assert ins["one"]["kind"] == "file" and ins["one"]["hash"] == sha(b"x,y\n")
    assert ins["one"]["size"] == 4 and ins["one"]["mode"] == "copy"
    assert ins["train"]["kind"] == "dir" and len(ins["train"]["hash"]) == 64
    assert ins["train"]["files"] == 2
    assert ins["dl"]["mode"] == "download" and ins["dl"]["kind"] == "dir"
    assert all(i["placed_at"] for i in r["inputs"])
    # the human show lists them
    shown = daemon.cli("show", run["id"]).stdout
    assert "Inputs:" in shown and "inputs/train" in shown and sha(b"x,y\n")[:12] in shown


def test_inputs_custom_path_and_copy_is_writable(daemon, make_tree, tmp_path):
    data = make_tree({"a.txt": "alpha\n"}, name="data")
    s = make_tree({"w.py": script("""
        import os
        p = os.environ["RUNYARD_INPUT_d"]
        assert p.endswith("/work/data/here"), p
        open(os.path.join(p, "new.txt"), "w").write("ok")
        print("WROTE")
    """)}, name="s2")
    run = daemon.cli("submit", "--source", s, "--python", PY, "--input", "d=%s" % data,
                     "--input-path", "d=data/here", "--", "w.py", json=True).json
    r = daemon.wait_terminal(run["id"])
    assert r["status"] == "Completed", r
    assert "WROTE" in lines(daemon, run["id"])
    assert sorted(os.listdir(data)) == ["a.txt"]


def test_inputs_mount_read_only(daemon, make_tree):
    data = make_tree({"a.txt": "alpha\n", "sub/b.txt": "beta\n"}, name="data")
    before = {p: p.read_bytes() for p in data.rglob("*") if p.is_file()}
    s = make_tree({"m.py": script("""
        import errno, os
        p = os.environ["RUNYARD_INPUT_d"]
        print("READ " + open(os.path.join(p, "a.txt")).read().strip())
        for target in ("new.txt", "a.txt"):
            try:
                open(os.path.join(p, target), "w").write("x")
                print("WRITABLE " + target)
            except OSError as e:
                print("ERR %s %s" % (target, errno.errorcode[e.errno]))
        try:
            os.remove(os.path.join(p, "sub", "b.txt"))
            print("REMOVED")
        except OSError as e:
            print("ERR rm " + errno.errorcode[e.errno])
    """)}, name="s3")
    run = daemon.cli("submit", "--source", s, "--python", PY, "--input",
                     "d=%s:mount" % data, "--", "m.py", json=True).json
    r = daemon.wait_terminal(run["id"])
    assert r["status"] == "Completed", r
    out = lines(daemon, run["id"], "stdout")
    assert "READ alpha" in out
    assert "ERR new.txt EROFS" in out and "ERR a.txt EROFS" in out and "ERR rm EROFS" in out
    after = {p: p.read_bytes() for p in data.rglob("*") if p.is_file()}
    assert after == before
    ins = r["inputs"][0]
    assert ins["mode"] == "mount" and ins["source"] == str(data)


def test_inputs_file_url(daemon, src, tmp_path):
    f = tmp_path / "remote.txt"
    f.write_text("from a url\n")
    url = "file://%s" % f
    run = run_with(daemon, src, "--input", "u=%s" % url, args=["u"])
    r = daemon.wait_terminal(run["id"])
    if r["status"] == "Failed" and "cannot download" in r["error"]["message"]:
        pytest.skip("this runyardd has no downloads (fetch not merged)")
    assert r["status"] == "Completed", r
    assert "FILE inputs/u from a url" in lines(daemon, run["id"], "stdout")
    i = r["inputs"][0]
    assert i["kind"] == "file" and i["hash"] == sha(b"from a url\n")
    # a wrong checksum fails in Preparing, naming the URL
    bad = "0" * 64
    run = run_with(daemon, src, "--input", "u=%s#sha256=%s" % (url, bad), args=["u"])
    r = daemon.wait_terminal(run["id"])
    assert r["status"] == "Failed" and r["error"]["stage"] == "Preparing", r
    assert str(f) in r["error"]["message"]


def test_outputs_to_datastore(daemon, make_tree, tmp_path):
    store = tmp_path / "datastore"
    store.mkdir()
    s = make_tree({"o.py": script("""
        import os
        p = os.environ["RUNYARD_OUTPUT_model"]
        os.makedirs(os.path.join(p, "deep"), exist_ok=True)
        open(os.path.join(p, "w.bin"), "w").write("weights")
        open(os.path.join(p, "deep", "cfg.json"), "w").write("{}")
    """)}, name="s4")
    run = daemon.cli("submit", "--source", s, "--python", PY, "--output",
                     "model=%s" % store, "--", "o.py", json=True).json
    r = daemon.wait_terminal(run["id"])
    assert r["status"] == "Completed", r
    dest = store / run["id"]
    assert (dest / "w.bin").read_text() == "weights"
    assert (dest / "deep" / "cfg.json").read_text() == "{}"
    assert [p.name for p in store.iterdir()] == [run["id"]]  # no temporaries left
    o = r["outputs_to"][0]
    assert o["name"] == "model" and o["stored"] == str(dest) and o["files"] == 2
    assert o["error"] is None
    # recorded like artifacts too: it was under ./outputs
    arts = daemon.rpc("run.outputs", {"run": run["id"]})
    paths = [a["path"] for a in arts.get("artifacts", arts.get("files", []))]
    assert "outputs/model/w.bin" in paths
    shown = daemon.cli("show", run["id"]).stdout
    assert "Outputs to:" in shown and str(dest) in shown


BAD = [
    ({"name": "1x", "source": "/tmp"}, "InvalidArgument", "not valid"),
    ({"name": "a-b", "source": "/tmp"}, "InvalidArgument", "not valid"),
    ({"name": "x" * 65, "source": "/tmp"}, "InvalidArgument", "not valid"),
    ({"name": "d", "source": "dataset:nope"}, "NotFound", "no dataset 'nope'"),
    ({"name": "d", "source": "/tmp", "path": "../x"}, "InvalidArgument", "inside the working"),
    ({"name": "d", "source": "/tmp", "path": "/abs"}, "InvalidArgument", "inside the working"),
    ({"name": "d", "source": "/tmp", "path": "a/./b"}, "InvalidArgument", "inside the working"),
    ({"name": "d", "source": "/no/such/dir"}, "InvalidArgument", "No such file"),
    ({"name": "d", "source": "relative/dir"}, "InvalidArgument", "absolute"),
    ({"name": "d", "source": "/tmp", "mode": "link"}, "InvalidArgument", "unknown mode"),
    ({"name": "d", "source": "/etc/hostname", "mode": "mount"}, "InvalidArgument",
     "only a directory"),
    ({"name": "d", "source": "http://127.0.0.1:1/x", "mode": "mount"}, "InvalidArgument",
     "cannot be mounted"),
    ({"name": "d", "source": "ftp://127.0.0.1/x"}, "InvalidArgument", "unsupported URL"),
    ({"name": "d", "source": "http://127.0.0.1/x#md5=1"}, "InvalidArgument", "fragment"),
    ({"name": "d", "source": "/tmp", "path": "outputs/x"}, "InvalidArgument", "taken"),
    ({"name": "d", "source": 7}, "InvalidArgument", "source"),
]


@pytest.mark.parametrize("entry,code,text", BAD)
def test_inputs_bad_input_refused(daemon, src, entry, code, text):
    before = daemon.runs()
    with pytest.raises(ryclient.ProtocolError) as e:
        daemon.rpc("run.submit", {"source": str(src), "command": ["read.py"], "python": PY,
                                  "inputs": [entry]})
    assert e.value.code == code, e.value
    assert text in str(e.value), e.value
    assert daemon.runs() == before


def test_inputs_bad_combinations_refused(daemon, src, tmp_path):
    before = daemon.runs()

    def refused(args, text, code="InvalidArgument"):
        a = {"source": str(src), "command": ["read.py"], "python": PY}
        a.update(args)
        with pytest.raises(ryclient.ProtocolError) as e:
            daemon.rpc("run.submit", a)
        assert e.value.code == code and text in str(e.value), e.value

    refused({"inputs": [{"name": "a", "source": "/tmp"}, {"name": "a", "source": "/etc"}]},
            "given twice")
    refused({"inputs": [{"name": "a", "source": "/tmp"},
                        {"name": "b", "source": "/etc", "path": "inputs/a/b"}]}, "overlaps")
    refused({"inputs": [{"name": "i%d" % i, "source": "/tmp"} for i in range(65)]},
            "at most", "TooLarge")
    refused({"inputs": {"name": "a"}}, "must be an array")
    refused({"outputs": [{"name": "o", "dir": str(tmp_path / "missing")}]}, "datastore")
    refused({"outputs": [{"name": "o", "dir": "relative"}]}, "absolute")
    refused({"outputs": [{"name": "o", "dir": "http://127.0.0.1:1/x?y=1"}]}, "without query")
    refused({"outputs": [{"name": "o", "dir": "ftp://127.0.0.1/x"}]}, "absolute path or")
    refused({"outputs": [{"name": "o", "dir": "/tmp"}, {"name": "o", "dir": "/tmp"}]},
            "given twice")
    ro = tmp_path / "ro"
    ro.mkdir()
    ro.chmod(0o555)
    if os.geteuid() != 0:
        refused({"outputs": [{"name": "o", "dir": str(ro)}]}, "not writable")
    assert daemon.runs() == before
    # the CLI says so too, with exit 1 for a malformed flag, 2 when refused
    res = daemon.cli("submit", "--source", src, "--input", "novalue", "--", "read.py",
                     check=1)
    assert "NAME=SOURCE" in res.stderr
    res = daemon.cli("submit", "--source", src, "--input", "a=/tmp:bogus", "--", "read.py",
                     check=1)
    assert "unknown mode" in res.stderr
    res = daemon.cli("submit", "--source", src, "--input-path", "zz=x", "--", "read.py",
                     check=1)
    assert "no --input zz" in res.stderr
    res = daemon.cli("submit", "--source", src, "--input", "a=/no/such", "--", "read.py",
                     check=2)
    assert "/no/such" in res.stderr
    assert daemon.runs() == before


def test_inputs_path_exists_in_snapshot_fails_in_preparing(daemon, make_tree, tmp_path):
    s = make_tree({"read.py": READER, "inputs/d": "already\n"}, name="s5")
    data = make_tree({"a.txt": "x"}, name="data5")
    run = run_with(daemon, s, "--input", "d=%s" % data)
    r = daemon.wait_terminal(run["id"])
    assert r["status"] == "Failed" and r["error"]["stage"] == "Preparing", r
    assert "already exists" in r["error"]["message"]


def test_inputs_input_stream_and_logs(daemon, src, make_tree):
    data = make_tree({"a.txt": "alpha\n"}, name="data6")
    run = run_with(daemon, src, "--input", "d=%s" % data, args=["d"])
    daemon.wait_terminal(run["id"])
    inp = daemon.logs(run["id"], "input")
    assert inp and all(l["stream"] == "input" for l in inp)
    assert any("1 placed" in l["text"] for l in inp)
    res = daemon.cli("logs", run["id"])
    assert "inputs: 1 placed" in res.stdout


# -- URLs over HTTP (tests/integration/httpserver.py) ---------------------------

if HAVE_HTTP:
    from httpserver import HttpServer, http_server  # noqa: F401,E402

needs_http = pytest.mark.skipif(not HAVE_HTTP, reason="httpserver.py not present")


@needs_http
def test_inputs_http_url_cache_and_revalidation(daemon, src, http_server):
    (http_server.root / "a.txt").write_text("over http\n")
    url = http_server.url("/files/a.txt")
    run = run_with(daemon, src, "--input", "a=%s" % url, args=["a"])
    r = daemon.wait_terminal(run["id"])
    assert r["status"] == "Completed", r
    assert "FILE inputs/a over http" in lines(daemon, run["id"], "stdout")
    i = r["inputs"][0]
    assert i["source"] == url and i["kind"] == "file" and i["hash"] == sha(b"over http\n")
    assert any("downloaded" in t and url in t for t in lines(daemon, run["id"], "input"))
    # a second run revalidates (304) and reuses the cached body
    run2 = run_with(daemon, src, "--input", "a=%s:download" % url, args=["a"])
    r2 = daemon.wait_terminal(run2["id"])
    assert r2["status"] == "Completed", r2
    assert "FILE inputs/a/a.txt over http" in lines(daemon, run2["id"], "stdout")
    assert any("cached" in t for t in lines(daemon, run2["id"], "input"))
    assert http_server.full_transfers("/files/a.txt") == 1
    assert http_server.count("/files/a.txt") == 2
    # a redirect lands on the same bytes
    run3 = run_with(daemon, src, "--input", "a=%s" % http_server.url("/redirect/a.txt"),
                    args=["a"])
    assert daemon.wait_terminal(run3["id"])["status"] == "Completed"


@needs_http
def test_inputs_http_wrong_checksum_and_failure_fail_in_preparing(daemon, src, http_server):
    (http_server.root / "a.txt").write_text("over http\n")
    url = http_server.url("/files/a.txt")
    run = run_with(daemon, src, "--input", "a=%s#sha256=%s" % (url, "ab" * 32), args=["a"])
    r = daemon.wait_terminal(run["id"])
    assert r["status"] == "Failed" and r["error"]["code"] == "PreparationFailed", r
    assert r["error"]["stage"] == "Preparing" and url in r["error"]["message"]
    assert "sha256" in r["error"]["message"] or "digest" in r["error"]["message"]
    # the right checksum passes
    good = "a=%s#sha256=%s" % (url, sha(b"over http\n"))
    assert daemon.wait_terminal(run_with(daemon, src, "--input", good)["id"])["status"] == \
        "Completed"
    bad = http_server.url("/fail/a.txt")
    run = run_with(daemon, src, "--input", "a=%s" % bad)
    r = daemon.wait_terminal(run["id"])
    assert r["status"] == "Failed" and r["error"]["stage"] == "Preparing", r
    assert bad in r["error"]["message"] and "500" in r["error"]["message"]
    missing = http_server.url("/status/404")
    r = daemon.wait_terminal(run_with(daemon, src, "--input", "a=%s" % missing)["id"])
    assert r["status"] == "Failed" and missing in r["error"]["message"], r


@needs_http
def test_inputs_concurrent_runs_share_one_download_with_progress(daemon_factory, src,
                                                                 tmp_path):
    daemon = daemon_factory(max_runs=3)
    with HttpServer(tmp_path / "www", slow_chunk=2048, slow_delay=0.1) as srv:
        body = os.urandom(60 * 1024)
        (srv.root / "big.bin").write_bytes(body)
        url = srv.url("/slow/big.bin")
        runs = [run_with(daemon, src, "--input", "big=%s" % url)["id"] for _ in range(3)]

        def progressing():
            r = daemon.show(runs[0])
            p = (r.get("inputs") or [{}])[0].get("progress")
            return r if p and p["state"] == "downloading" and p["bytes"] > 0 else None
        r = wait_for(progressing, what="download progress in show")
        p = r["inputs"][0]["progress"]
        assert p["total"] == len(body) and p["rate"] >= 0
        shown = daemon.cli("show", runs[0]).stdout
        assert "downloading" in shown or "Inputs:" in shown
        ends = [daemon.wait_terminal(x) for x in runs]
        assert [e["status"] for e in ends] == ["Completed"] * 3, ends
        assert srv.full_transfers("/slow/big.bin") == 1
        assert {e["inputs"][0]["hash"] for e in ends} == {sha(body)}
        prog = [t for t in lines(daemon, runs[0], "input") if "big.bin" in t]
        assert any(" of " in t and "/s" in t for t in prog), prog
        # wait --show-output shows the input lines with the rest
        out = daemon.cli("wait", runs[1], "--show-output").stdout
        assert "input big:" in out


@needs_http
def test_inputs_cancel_during_download(daemon, src, tmp_path):
    with HttpServer(tmp_path / "www", slow_chunk=512, slow_delay=0.2) as srv:
        (srv.root / "big.bin").write_bytes(b"x" * 100000)
        url = srv.url("/slow/big.bin")
        run = run_with(daemon, src, "--input", "big=%s" % url)["id"]
        daemon.wait_status(run, "Preparing")
        wait_for(lambda: daemon.show(run)["inputs"][0].get("progress", {}).get("bytes"),
                 what="the download to start")
        daemon.cli("cancel", run)
        r = daemon.wait_terminal(run, timeout=20)
        assert r["status"] == "Canceled", r


@needs_http
def test_datasets_register_http_url(daemon, http_server, src):
    (http_server.root / "d.csv").write_text("1,2\n")
    url = http_server.url("/files/d.csv")
    v = daemon.cli("dataset", "register", "web", url, json=True).json
    assert v["files"] == 1 and v["sources"] == [url]
    run = run_with(daemon, src, "--input", "w=dataset:web", args=["w"])
    r = daemon.wait_terminal(run["id"])
    assert r["status"] == "Completed", r
    assert "FILE inputs/w/d.csv 1,2" in lines(daemon, run["id"], "stdout")
    res = daemon.cli("dataset", "register", "web", http_server.url("/fail/d.csv"), check=2)
    assert "/fail/d.csv" in res.stderr and "Unavailable" in res.stderr
    assert len(daemon.cli("dataset", "list", json=True).json["datasets"]) == 1


@needs_http
def test_inputs_daemon_killed_during_download(daemon, src, tmp_path):
    with HttpServer(tmp_path / "www", slow_chunk=4096, slow_delay=0.1) as srv:
        body = os.urandom(80 * 1024)
        (srv.root / "big.bin").write_bytes(body)
        url = srv.url("/slow/big.bin")
        run = run_with(daemon, src, "--input", "big=%s" % url)["id"]
        wait_for(lambda: daemon.show(run)["inputs"][0].get("progress", {}).get("bytes"),
                 what="the download to start")
        daemon._drop_client()
        daemon.kill9()
        daemon.restart()
        r = daemon.wait_terminal(run)
        assert r["status"] == "Completed", r
        i = r["inputs"][0]
        assert i["hash"] == sha(body) and i["size"] == len(body)


class _PutServer:
    """A loopback HTTP datastore for outputs: stores each PUT body under its
    (unescaped) path; PUTs below /deny/ answer 403."""

    def __init__(self):
        import http.server
        import urllib.parse
        store = self.store = {}

        class H(http.server.BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *a):
                pass

            def do_PUT(self):
                n = int(self.headers.get("Content-Length", "0"))
                body = self.rfile.read(n)
                path = urllib.parse.unquote(self.path)
                code = 403 if path.startswith("/deny/") else 201
                if code == 201:
                    store[path] = body
                self.send_response(code)
                self.send_header("Content-Length", "0")
                self.end_headers()

        import socketserver

        class S(socketserver.ThreadingMixIn, http.server.HTTPServer):
            daemon_threads = True

        self.httpd = S(("127.0.0.1", 0), H)
        self.base = "http://127.0.0.1:%d" % self.httpd.server_address[1]
        self.thread = threading.Thread(target=self.httpd.serve_forever, daemon=True)
        self.thread.start()

    def close(self):
        self.httpd.shutdown()
        self.httpd.server_close()


def test_outputs_to_http_datastore(daemon, make_tree):
    srv = _PutServer()
    try:
        s = make_tree({"o.py": script("""
            import os
            p = os.environ["RUNYARD_OUTPUT_m"]
            os.makedirs(os.path.join(p, "a b"), exist_ok=True)
            open(os.path.join(p, "w.bin"), "w").write("weights")
            open(os.path.join(p, "a b", "c.txt"), "w").write("spaced")
        """)}, name="s7")
        run = daemon.cli("submit", "--source", s, "--python", PY, "--output",
                         "m=%s/store" % srv.base, "--", "o.py", json=True).json
        r = daemon.wait_terminal(run["id"])
        assert r["status"] == "Completed", r
        rid = run["id"]
        assert srv.store == {"/store/%s/w.bin" % rid: b"weights",
                             "/store/%s/a b/c.txt" % rid: b"spaced"}
        o = r["outputs_to"][0]
        assert o["stored"] == "%s/store/%s" % (srv.base, rid) and o["files"] == 2
        # a refusing datastore fails the run in Finalizing, naming the URL
        run = daemon.cli("submit", "--source", s, "--python", PY, "--output",
                         "m=%s/deny" % srv.base, "--", "o.py", json=True).json
        r = daemon.wait_terminal(run["id"])
        assert r["status"] == "Failed" and r["error"]["stage"] == "Finalizing", r
        assert "403" in r["error"]["message"] and srv.base in r["error"]["message"]
        assert "403" in daemon.show(run["id"])["outputs_to"][0]["error"]
    finally:
        srv.close()
