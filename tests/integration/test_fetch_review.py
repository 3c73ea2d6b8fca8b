"""Downloads (daemon/net/fetch.c), reviewed for what a server controls: a body
that changes while a transfer is resumed must not become a cache object
that later requests trust."""

import hashlib
import http.server
import socketserver
import threading

import pytest

from test_fetch import PROBE, one


class _Server(socketserver.ThreadingMixIn, http.server.HTTPServer):
    daemon_threads = True
    allow_reuse_address = True


def changing_server(a, b, validators):
    """First GET: body a, Content-Length sent, only half of it, then the
    connection drops. Every later GET: body b (a Range honoured without
    looking at If-Range, as a server with weak validators may)."""
    seen = []

    class H(http.server.BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def log_message(self, *args):
            pass

        def do_GET(self):
            first = not seen
            seen.append(dict(self.headers))
            body = a if first else b
            rng = self.headers.get("Range")
            start = int(rng[len("bytes="):-1]) if rng and not first else 0
            self.send_response(206 if start else 200)
            for k, v in validators(first):
                self.send_header(k, v)
            if start:
                self.send_header("Content-Range",
                                 "bytes %d-%d/%d" % (start, len(body) - 1, len(body)))
            self.send_header("Content-Length", str(len(body) - start))
            self.end_headers()
            if first:
                self.wfile.write(body[:len(body) // 2])
                self.wfile.flush()
                self.close_connection = True
                return
            self.wfile.write(body[start:])

    srv = _Server(("127.0.0.1", 0), H)
    threading.Thread(target=srv.serve_forever, daemon=True).start()
    return srv, seen


@pytest.mark.skipif(not PROBE.exists(), reason="fetch-probe is not built")
@pytest.mark.parametrize("kind", ["weak-etag", "none"])
def test_review_resume_needs_a_strong_validator(tmp_path, kind):
    """A broken transfer was resumed with Range even when no If-Range could
    be sent (a weak ETag only, or no validator): a body that changed
    meanwhile came out spliced, half old and half new, and with a weak ETag
    its index entry made later requests trust it on a 304."""
    a = hashlib.sha256(b"a").digest() * 10000
    b = hashlib.sha256(b"b").digest() * 10000
    if kind == "weak-etag":
        def validators(first):
            return [("ETag", 'W/"%s"' % ("a" if first else "b"))]
    else:
        def validators(first):
            return []
    srv, seen = changing_server(a, b, validators)
    try:
        url = "http://127.0.0.1:%d/x.bin" % srv.server_address[1]
        r, _ = one(tmp_path / "cache", "--retries", "2", url)
        assert r["err"] == 0, r
        assert r["sha256"] == hashlib.sha256(b).hexdigest(), (
            "spliced body: %d requests, %r" % (len(seen), seen))
        assert len(seen) == 2 and "Range" not in seen[1], seen
    finally:
        srv.shutdown()
        srv.server_close()


@pytest.mark.skipif(not PROBE.exists(), reason="fetch-probe is not built")
def test_review_oversized_etag_does_not_defeat_revalidation(tmp_path):
    """A 70 KB ETag (curl takes header lines up to 100 KB) was written into
    the index entry, which is read back only up to 64 KiB: the entry was
    lost and every request downloaded the body again, though the server
    also sent a Last-Modified that would have answered 304."""
    body = b"hello" * 1000
    lastmod = "Sat, 01 Jan 2022 00:00:00 GMT"
    seen = []

    class H(http.server.BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def log_message(self, *args):
            pass

        def do_GET(self):
            seen.append(dict(self.headers))
            if self.headers.get("If-Modified-Since") == lastmod:
                self.send_response(304)
                self.send_header("Content-Length", "0")
                self.end_headers()
                return
            self.send_response(200)
            self.send_header("ETag", '"%s"' % ("e" * 70_000))
            self.send_header("Last-Modified", lastmod)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

    srv = _Server(("127.0.0.1", 0), H)
    threading.Thread(target=srv.serve_forever, daemon=True).start()
    try:
        url = "http://127.0.0.1:%d/e.bin" % srv.server_address[1]
        r1, _ = one(tmp_path / "cache", url)
        assert r1["err"] == 0 and not r1["from_cache"], r1
        r2, _ = one(tmp_path / "cache", url)
        assert r2["err"] == 0 and r2["sha256"] == r1["sha256"], r2
        assert r2["from_cache"], (r2, [sorted(h) for h in seen])
        assert "If-None-Match" not in seen[1]
        for f in (tmp_path / "cache" / "index").iterdir():
            assert f.stat().st_size < 4096
    finally:
        srv.shutdown()
        srv.server_close()
