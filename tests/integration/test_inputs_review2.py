"""Second review of the inputs and datasets code: an upload to an HTTP
datastore has an overall time limit, a finished local upload found again
after a restart counts as done, and the temporaries of a mounted dataset
that a kill -9 left are swept at start. Loopback only."""

import http.server
import os
import socketserver
import threading
import time

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
