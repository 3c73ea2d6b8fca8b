"""A small HTTP server for tests of downloads, on 127.0.0.1 only.

Standard library only, threaded, on an ephemeral port. It serves the files of
a directory and a few paths that misbehave on purpose:

  /files/NAME            the file NAME of the directory, with ETag and
                         Last-Modified; If-None-Match / If-Modified-Since
                         answer 304; Range: bytes=N- answers 206 (unless an
                         If-Range names another body: then 200)
  /redirect/NAME         302 to /files/NAME
  /redirect-loop         302 to itself, forever
  /slow/NAME             the file, trickled: `slow_chunk` bytes every
                         `slow_delay` seconds (Content-Length sent up front)
  /flaky/NAME            500 for the first `flaky_failures` requests of this
                         path, then the file as /files/NAME does
  /fail/NAME             always 500
  /status/CODE           an empty answer with that status (404, 403, 503...)
  /drop/NAME             the first request sends the headers and half of the
                         body, then closes the connection; later requests
                         behave as /files/NAME (Range included), so a client
                         can resume
  /nolength/NAME         the file without Content-Length (closed at the end)
  /noetag/NAME           the file with Last-Modified but no ETag

Every request is recorded: `server.count(path)` says how many requests a path
got, `server.requests` lists (method, path, headers dict, status, body bytes
sent) tuples, and `server.full_transfers(path)` counts 200 answers that sent
a body.

Use:

    from httpserver import HttpServer

    with HttpServer(tmp_path / "www") as srv:
        (tmp_path / "www" / "a.bin").write_bytes(b"...")
        url = srv.url("/files/a.bin")

or the pytest fixture `http_server` (import it into a test module or
conftest: `from httpserver import http_server  # noqa: F401`), which serves
tmp_path / "www".
"""

import email.utils
import hashlib
import http.server
import os
import pathlib
import re
import socketserver
import threading
import time
import urllib.parse

try:
    import pytest
except ImportError:  # usable without pytest, as a plain module
    pytest = None


class _Server(socketserver.ThreadingMixIn, http.server.HTTPServer):
    daemon_threads = True
    allow_reuse_address = True

    def handle_error(self, request, client_address):
        # A client that gives up mid-body (a size limit, a timeout, a
        # cancel) is what the tests provoke: not worth a traceback.
        import sys
        if not isinstance(sys.exc_info()[1], (ConnectionError, TimeoutError)):
            super().handle_error(request, client_address)


def _etag(path):
    st = os.stat(path)
    h = hashlib.sha256(("%d:%d:%s" % (st.st_size, st.st_mtime_ns, path)).encode())
    return '"%s"' % h.hexdigest()[:32]


class _Handler(http.server.BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server_version = "runyard-test-httpserver/1"

    def log_message(self, fmt, *args):  # quiet: pytest shows failures
        pass

    # -- helpers ------------------------------------------------------------

    @property
    def owner(self):
        return self.server.owner

    def _record(self, status, sent):
        self.owner._record(self.command, self.path, dict(self.headers.items()), status, sent)

    def _empty(self, status, headers=()):
        self.send_response(status)
        for k, v in headers:
            self.send_header(k, v)
        self.send_header("Content-Length", "0")
        self.end_headers()
        self._record(status, 0)

    def _file(self, name):
        root = self.owner.root.resolve()
        p = (root / urllib.parse.unquote(name)).resolve()
        if root not in p.parents or not p.is_file():
            return None
        return p

    def _serve_file(self, name, mode="plain"):
        p = self._file(name)
        if p is None:
            self._empty(404)
            return
        data = p.read_bytes()
        st = p.stat()
        etag = _etag(str(p))
        lastmod = email.utils.formatdate(st.st_mtime, usegmt=True)
        inm = self.headers.get("If-None-Match")
        ims = self.headers.get("If-Modified-Since")
        use_etag = mode != "noetag"
        if inm is not None and use_etag:
            if inm.strip() == "*" or etag in [t.strip() for t in inm.split(",")]:
                self._empty(304, [("ETag", etag), ("Last-Modified", lastmod)])
                return
        elif ims is not None:
            try:
                since = email.utils.parsedate_to_datetime(ims).timestamp()
            except (TypeError, ValueError):
                since = None
            if since is not None and int(st.st_mtime) <= since:
                self._empty(304, [("Last-Modified", lastmod)])
                return
        start, status = 0, 200
        rng = self.headers.get("Range")
        if_range = self.headers.get("If-Range")
        if rng and if_range is not None and if_range.strip() not in (etag, lastmod):
            rng = None  # the body changed since: send all of it (RFC 9110 13.1.5)
        if rng and mode != "nolength":
            m = re.fullmatch(r"bytes=(\d+)-", rng.strip())
            if m:
                start = int(m.group(1))
                if start >= len(data):
                    self._empty(416, [("Content-Range", "bytes */%d" % len(data))])
                    return
                status = 206
        body = data[start:]
        self.send_response(status)
        if use_etag:
            self.send_header("ETag", etag)
        self.send_header("Last-Modified", lastmod)
        self.send_header("Content-Type", "application/octet-stream")
        self.send_header("Accept-Ranges", "bytes")
        if status == 206:
            self.send_header("Content-Range",
                             "bytes %d-%d/%d" % (start, len(data) - 1, len(data)))
        if mode == "nolength":
            self.send_header("Connection", "close")
            self.close_connection = True
        else:
            self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        if mode == "slow":
            sent = 0
            try:
                for i in range(0, len(body), self.owner.slow_chunk):
                    chunk = body[i:i + self.owner.slow_chunk]
                    self.wfile.write(chunk)
                    self.wfile.flush()
                    sent += len(chunk)
                    # No pause after the last chunk: the answer is recorded
                    # at once, before a fast client has finished with it.
                    if sent < len(body):
                        time.sleep(self.owner.slow_delay)
            except OSError:
                self.close_connection = True
            self._record(status, sent)
            return
        if mode == "drop":
            half = body[:max(1, len(body) // 2)]
            try:
                self.wfile.write(half)
                self.wfile.flush()
            except OSError:
                pass
            self.close_connection = True
            self._record(status, len(half))
            return
        try:
            self.wfile.write(body)
        except OSError:
            self.close_connection = True
        self._record(status, len(body))

    # -- routes -------------------------------------------------------------

    def do_HEAD(self):
        self._empty(405)

    def do_GET(self):
        path = urllib.parse.urlsplit(self.path).path
        parts = path.split("/", 2)
        kind = parts[1] if len(parts) > 1 else ""
        rest = parts[2] if len(parts) > 2 else ""
        n = self.owner._bump(path)
        if kind == "files":
            self._serve_file(rest)
        elif kind == "noetag":
            self._serve_file(rest, "noetag")
        elif kind == "nolength":
            self._serve_file(rest, "nolength")
        elif kind == "redirect":
            self._empty(302, [("Location", "/files/" + rest)])
        elif kind == "redirect-loop":
            self._empty(302, [("Location", "/redirect-loop")])
        elif kind == "slow":
            self._serve_file(rest, "slow")
        elif kind == "flaky":
            if n <= self.owner.flaky_failures:
                self._empty(500)
            else:
                self._serve_file(rest)
        elif kind == "fail":
            self._empty(500)
        elif kind == "status":
            try:
                code = int(rest)
            except ValueError:
                code = 400
            self._empty(code)
        elif kind == "drop":
            self._serve_file(rest, "drop" if n == 1 else "plain")
        else:
            self._empty(404)


class HttpServer:
    """A threaded HTTP server on 127.0.0.1 serving `root` (see module doc)."""

    def __init__(self, root, flaky_failures=2, slow_chunk=1024, slow_delay=0.2):
        self.root = pathlib.Path(root)
        self.root.mkdir(parents=True, exist_ok=True)
        self.flaky_failures = flaky_failures
        self.slow_chunk = slow_chunk
        self.slow_delay = slow_delay
        self.requests = []
        self._counts = {}
        self._lock = threading.Lock()
        self._httpd = None
        self._thread = None

    # -- lifecycle ----------------------------------------------------------

    def start(self):
        self._httpd = _Server(("127.0.0.1", 0), _Handler)
        self._httpd.owner = self
        self._thread = threading.Thread(target=self._httpd.serve_forever,
                                        kwargs={"poll_interval": 0.05}, daemon=True)
        self._thread.start()
        return self

    def stop(self):
        if self._httpd is not None:
            self._httpd.shutdown()
            self._httpd.server_close()
            self._httpd = None

    def __enter__(self):
        return self.start()

    def __exit__(self, *exc):
        self.stop()

    # -- addresses ----------------------------------------------------------

    @property
    def port(self):
        return self._httpd.server_address[1]

    @property
    def base(self):
        return "http://127.0.0.1:%d" % self.port

    def url(self, path):
        return self.base + (path if path.startswith("/") else "/" + path)

    # -- records ------------------------------------------------------------

    def _bump(self, path):
        with self._lock:
            self._counts[path] = self._counts.get(path, 0) + 1
            return self._counts[path]

    def _record(self, method, path, headers, status, sent):
        with self._lock:
            self.requests.append((method, path, headers, status, sent))

    def count(self, path):
        """Requests received for path (the path part of the URL)."""
        with self._lock:
            return self._counts.get(path, 0)

    def requests_for(self, path):
        # A client may have read the whole answer before the handler thread
        # records it, so wait (briefly) until every request counted for the
        # path has its record.
        deadline = time.monotonic() + 5
        while True:
            with self._lock:
                got = [r for r in self.requests if urllib.parse.urlsplit(r[1]).path == path]
                if len(got) >= self._counts.get(path, 0) or time.monotonic() > deadline:
                    return got
            time.sleep(0.01)

    def full_transfers(self, path):
        """200 answers with a body sent for path."""
        return sum(1 for r in self.requests_for(path) if r[3] == 200 and r[4] > 0)

    def reset(self):
        with self._lock:
            self._counts.clear()
            self.requests.clear()


if pytest is not None:
    @pytest.fixture
    def http_server(tmp_path):
        """An HttpServer serving tmp_path / "www", stopped after the test."""
        with HttpServer(tmp_path / "www") as srv:
            yield srv


if __name__ == "__main__":
    import sys
    root = sys.argv[1] if len(sys.argv) > 1 else "."
    with HttpServer(root) as srv:
        print(srv.base, flush=True)
        try:
            while True:
                time.sleep(3600)
        except KeyboardInterrupt:
            pass
