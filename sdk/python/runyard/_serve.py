"""runyard's scoring server: one registered model behind HTTP.

runyardd starts this program for each instance of a deployed service
(docs/models.md) with two listening sockets already bound on 127.0.0.1:

  fd 3  the service's public socket (its port), shared by every instance
        of the service and kept open by the daemon;
  fd 4  a private socket on which only the daemon checks this instance.

The server loads the model (or runs the entry script's init()), then answers
on the private socket. Once the daemon has seen it healthy it sends SIGUSR1
and the server accepts clients on the public socket too. SIGTERM makes it
stop accepting, finish the requests it has begun (a kept-alive connection
gets "Connection: close" on its next response, an idle one is closed), and
exit. Because instances share the public socket's accept queue, a client
connecting while one instance stops and another starts is never refused.

Routes, for the no-code scikit-learn server and for entry scripts alike:

  GET  /             "Healthy"
  POST /score        {"data": [[...], ...], "method": "predict" | "predict_proba"}
                     -> a JSON list (predict_proba by default when the model has it);
                     an entry script's run() gets the raw body instead
  POST /invocations  MLflow's {"instances"|"inputs"|"dataframe_split"|
                     "dataframe_records": ...} -> {"predictions": [...]}
  GET  /ping, /health  200

Errors: 415 for a body that is not JSON, 400 for JSON of the wrong shape,
500 when the model (or run()) raises; each with a message.

Standard library only, plus joblib, numpy and scikit-learn for the no-code
server (what the model needs is the interpreter's business).
"""

import argparse
import importlib.util
import json
import os
import queue
import selectors
import signal
import socket
import sys
import threading
import time
import traceback

MAX_HEADER = 64 * 1024
MAX_BODY = 64 * 1024 * 1024
MAX_CONNECTIONS = 512
KEEPALIVE_IDLE = 60.0   # an idle kept-alive connection is closed after this
DRAIN_IDLE = 0.5        # ... and after this once the server is stopping
DRAIN_MAX = 25.0        # runyardd kills a stopping server after 30 s
READ_TIMEOUT = 30.0     # a request that has begun must go on arriving

REASONS = {200: "OK", 400: "Bad Request", 404: "Not Found", 405: "Method Not Allowed",
           408: "Request Timeout", 411: "Length Required", 413: "Payload Too Large",
           415: "Unsupported Media Type", 431: "Request Header Fields Too Large",
           500: "Internal Server Error", 505: "HTTP Version Not Supported"}


def _now():
    t = time.time()
    return time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(t)) + ".%06dZ" % int(t % 1 * 1e6)


_log_lock = threading.Lock()


def log(msg):
    with _log_lock:
        try:
            sys.stderr.write("%s %s\n" % (_now(), msg))
            sys.stderr.flush()
        except OSError:
            pass


class HttpError(Exception):
    def __init__(self, status, message, close=False):
        super().__init__(message)
        self.status = status
        self.message = message
        self.close = close


class Request:
    __slots__ = ("method", "target", "path", "version", "headers", "body", "keep_alive")


# -- JSON ---------------------------------------------------------------------------


def _plain(v):
    """Something json can write: numpy arrays and scalars as lists and numbers,
    NaN and the infinities as null."""
    if isinstance(v, float):
        return v if v == v and v not in (float("inf"), float("-inf")) else None
    if isinstance(v, (str, int, bool)) or v is None:
        return v
    if isinstance(v, dict):
        return {str(k): _plain(x) for k, x in v.items()}
    if isinstance(v, (list, tuple)):
        return [_plain(x) for x in v]
    if hasattr(v, "tolist"):
        return _plain(v.tolist())
    if hasattr(v, "item"):
        return _plain(v.item())
    if isinstance(v, (bytes, bytearray)):
        return v.decode("utf-8", "replace")
    return str(v)


def dumps(v):
    try:
        return json.dumps(v, allow_nan=False, separators=(",", ":")).encode()
    except (TypeError, ValueError):
        return json.dumps(_plain(v), allow_nan=False, separators=(",", ":")).encode()


def parse_json_body(req):
    """The body as JSON: 415 when the Content-Type says otherwise or the bytes
    are not JSON."""
    ctype = req.headers.get("content-type", "")
    base = ctype.split(";", 1)[0].strip().lower()
    if ctype and base != "application/json" and not base.endswith("+json"):
        raise HttpError(415, "the body must be JSON (Content-Type: application/json), not %s"
                        % base)
    try:
        text = req.body.decode("utf-8")
        return text, json.loads(text)
    except (UnicodeDecodeError, ValueError) as e:
        raise HttpError(415, "the body is not JSON: %s" % e)


# -- inputs ---------------------------------------------------------------------------

_SCALAR = (int, float, str, bool, type(None))


def check_rows(rows, what):
    """A non-empty list of rows, each a list of scalars, all of one length."""
    if not isinstance(rows, list) or not rows:
        raise HttpError(400, "%s must be a non-empty list of rows (lists of feature values)"
                        % what)
    width = None
    for i, row in enumerate(rows):
        if not isinstance(row, list):
            raise HttpError(400, "%s[%d] must be a row: a list of feature values, not %s"
                            % (what, i, type(row).__name__))
        for x in row:
            if not isinstance(x, _SCALAR):
                raise HttpError(400, "%s[%d] holds a %s; a row holds numbers or strings"
                                % (what, i, type(x).__name__))
        if width is None:
            width = len(row)
        elif len(row) != width:
            raise HttpError(400, "%s[%d] has %d values; the first row has %d"
                            % (what, i, len(row), width))
    return rows


def rows_from_records(records, what, feature_names):
    if not isinstance(records, list) or not records:
        raise HttpError(400, "%s must be a non-empty list" % what)
    for i, r in enumerate(records):
        if not isinstance(r, dict):
            raise HttpError(400, "%s[%d] must be an object {column: value}" % (what, i))
    columns = list(feature_names) if feature_names is not None else list(records[0])
    rows = []
    for i, r in enumerate(records):
        missing = [c for c in columns if c not in r]
        if missing:
            raise HttpError(400, "%s[%d] has no column %r" % (what, i, missing[0]))
        rows.append([r[c] for c in columns])
    return check_rows(rows, what)


def rows_from_columns(cols, what, feature_names):
    if not isinstance(cols, dict) or not cols:
        raise HttpError(400, "%s must be a non-empty object {column: [values]}" % what)
    columns = list(feature_names) if feature_names is not None else list(cols)
    for c in columns:
        if c not in cols:
            raise HttpError(400, "%s has no column %r" % (what, c))
        if not isinstance(cols[c], list):
            raise HttpError(400, "%s[%r] must be a list of values" % (what, c))
    n = {len(cols[c]) for c in columns}
    if len(n) != 1:
        raise HttpError(400, "the columns of %s have different lengths" % what)
    return check_rows([list(r) for r in zip(*(cols[c] for c in columns))], what)


def mlflow_rows(doc, feature_names):
    """Rows from MLflow's request shapes."""
    if not isinstance(doc, dict):
        raise HttpError(400, "expected an object with one of instances, inputs, "
                        "dataframe_split or dataframe_records")
    keys = [k for k in ("instances", "inputs", "dataframe_split", "dataframe_records")
            if k in doc]
    if len(keys) != 1:
        raise HttpError(400, "expected exactly one of instances, inputs, dataframe_split or "
                        "dataframe_records, got %s" % (", ".join(keys) or "none"))
    key, value = keys[0], doc[keys[0]]
    if key == "dataframe_split":
        if not isinstance(value, dict) or "data" not in value:
            raise HttpError(400, "dataframe_split must be {\"columns\": [...], \"data\": "
                            "[[...], ...]}")
        data = check_rows(value["data"], "dataframe_split.data")
        columns = value.get("columns")
        if columns is not None and feature_names is not None:
            if not isinstance(columns, list) or len(columns) != len(data[0]):
                raise HttpError(400, "dataframe_split.columns must name every value of a row")
            index = {c: i for i, c in enumerate(columns)}
            missing = [c for c in feature_names if c not in index]
            if missing:
                raise HttpError(400, "dataframe_split has no column %r" % missing[0])
            data = [[row[index[c]] for c in feature_names] for row in data]
        return data
    if key == "dataframe_records":
        return rows_from_records(value, key, feature_names)
    if isinstance(value, dict):
        return rows_from_columns(value, key, feature_names)
    if isinstance(value, list) and value and all(isinstance(v, dict) for v in value):
        return rows_from_records(value, key, feature_names)
    if isinstance(value, list) and value and all(isinstance(v, _SCALAR) for v in value):
        value = [[v] for v in value]
    return check_rows(value, key)


# -- applications -----------------------------------------------------------------------


def model_file(model_dir):
    files = []
    for root, dirs, names in os.walk(model_dir, followlinks=True):
        dirs.sort()
        for n in sorted(names):
            files.append(os.path.join(root, n))
    if len(files) == 1:
        return files[0]
    picked = [f for f in files if f.endswith((".joblib", ".pkl", ".pickle", ".sav"))]
    if len(picked) == 1:
        return picked[0]
    raise RuntimeError("the model has %d files (%s); a no-code deployment needs exactly one "
                       "model file (.joblib or .pkl)"
                       % (len(files), ", ".join(os.path.relpath(f, model_dir) for f in files)))


class SklearnApp:
    """The no-code server: a scikit-learn model, no user code."""

    def __init__(self, model_ref, model_dir):
        import numpy
        self.np = numpy
        path = model_file(model_dir)
        try:
            import joblib
            self.model = joblib.load(path)
        except ImportError:
            import pickle
            with open(path, "rb") as f:
                self.model = pickle.load(f)
        if not hasattr(self.model, "predict"):
            raise RuntimeError("%s holds a %s, which has no predict()"
                               % (os.path.basename(path), type(self.model).__name__))
        self.n_features = getattr(self.model, "n_features_in_", None)
        names = getattr(self.model, "feature_names_in_", None)
        self.feature_names = [str(n) for n in names] if names is not None else None
        try:
            import sklearn
            version = " (scikit-learn %s)" % sklearn.__version__
        except ImportError:
            version = ""
        log("loaded model %s: %s from %s%s" % (model_ref, type(self.model).__name__,
                                                os.path.basename(path), version))

    def _matrix(self, rows):
        if self.n_features is not None and len(rows[0]) != self.n_features:
            raise HttpError(400, "each row must have %d feature values, not %d"
                            % (self.n_features, len(rows[0])))
        try:
            return self.np.asarray(rows)
        except ValueError as e:
            raise HttpError(400, "the rows do not make a matrix: %s" % e)

    def _call(self, method, rows):
        X = self._matrix(rows)
        try:
            return getattr(self.model, method)(X)
        except Exception as e:  # the model's own failure
            log("the model's %s failed:\n%s" % (method, traceback.format_exc().rstrip()))
            raise HttpError(500, "the model failed: %s: %s" % (type(e).__name__, e))

    def score(self, req):
        _, doc = parse_json_body(req)
        if not isinstance(doc, dict) or "data" not in doc:
            raise HttpError(400, "expected {\"data\": [[...], ...]} (and optionally "
                            "\"method\": \"predict\" or \"predict_proba\")")
        rows = check_rows(doc["data"], "data")
        method = doc.get("method")
        if method is None:
            method = "predict_proba" if hasattr(self.model, "predict_proba") else "predict"
        elif method not in ("predict", "predict_proba"):
            raise HttpError(400, "method must be \"predict\" or \"predict_proba\", not %s"
                            % json.dumps(method))
        elif not hasattr(self.model, method):
            raise HttpError(400, "the model (%s) has no %s; ask for \"method\": \"predict\""
                            % (type(self.model).__name__, method))
        return 200, "application/json", dumps(self._call(method, rows))

    def invocations(self, req):
        _, doc = parse_json_body(req)
        rows = mlflow_rows(doc, self.feature_names)
        return 200, "application/json", dumps({"predictions": self._call("predict", rows)})


class ScriptApp:
    """An entry script's init() once, then run(raw_json) per request."""

    def __init__(self, model_ref, script, source_dir):
        sys.path.insert(0, source_dir)
        path = os.path.join(source_dir, script)
        name = os.path.splitext(os.path.basename(script))[0] or "score"
        spec = importlib.util.spec_from_file_location(name, path)
        module = importlib.util.module_from_spec(spec)
        sys.modules[name] = module
        spec.loader.exec_module(module)
        if not callable(getattr(module, "run", None)):
            raise RuntimeError("the entry script %s has no run(raw_data) function" % script)
        if callable(getattr(module, "init", None)):
            module.init()
        self.run = module.run
        log("entry script %s ready (model %s)" % (script, model_ref))

    def _run(self, text):
        try:
            return self.run(text)
        except Exception as e:
            log("run() failed:\n%s" % traceback.format_exc().rstrip())
            raise HttpError(500, "run() failed: %s: %s" % (type(e).__name__, e))

    def _answer(self, result, wrap):
        if isinstance(result, (bytes, bytearray)) and not wrap:
            return 200, "application/octet-stream", bytes(result)
        return 200, "application/json", dumps({"predictions": result} if wrap else result)

    def score(self, req):
        text, _ = parse_json_body(req)
        return self._answer(self._run(text), False)

    def invocations(self, req):
        _, doc = parse_json_body(req)
        rows = mlflow_rows(doc, None)
        return self._answer(self._run(json.dumps({"data": rows})), True)


# -- HTTP -------------------------------------------------------------------------------


class Server:
    def __init__(self, app, public, check):
        self.app = app
        self.public = public
        self.check = check
        self.want_public = False
        self.want_stop = False
        self.serving_public = False
        self.stopping = False
        self.lock = threading.Lock()
        self.active = 0    # connections accepted and not yet closed
        self.workers = 0   # threads serving connections
        self.waiting = 0   # ... of which wait for one
        self.conns = queue.SimpleQueue()

    # the accept loop (main thread)

    def loop(self, wake):
        sel = selectors.DefaultSelector()
        sel.register(self.check, selectors.EVENT_READ, "check")
        sel.register(wake, selectors.EVENT_READ, "wake")
        stop_at = None
        while True:
            if self.want_public and not self.serving_public and not self.want_stop:
                self.serving_public = True
                sel.register(self.public, selectors.EVENT_READ, "public")
                log("serving clients on 127.0.0.1:%d" % self.public.getsockname()[1])
            if self.want_stop and not self.stopping:
                self.stopping = True
                stop_at = time.monotonic() + DRAIN_MAX
                for s in (self.public, self.check):
                    try:
                        sel.unregister(s)
                    except (KeyError, ValueError):
                        pass
                    # Our copy only: the daemon and the next instance keep
                    # the public socket, and its queue, open.
                    s.close()
                with self.lock:
                    log("stopping: %d connection(s) to finish" % self.active)
            if self.stopping:
                with self.lock:
                    if self.active == 0:
                        break
                if time.monotonic() > stop_at:
                    log("stopping with connections still open")
                    break
            with self.lock:
                full = self.active >= MAX_CONNECTIONS
            for key, _ in sel.select(0.25 if self.stopping or full else None):
                if key.data == "wake":
                    try:
                        while wake.recv(64):
                            pass
                    except OSError:
                        pass
                elif not full:
                    self._accept(key.fileobj)
        log("stopped")

    def _accept(self, listener):
        while True:
            try:
                conn, _ = listener.accept()
            except (BlockingIOError, InterruptedError):
                return
            except OSError as e:
                log("accept failed: %s" % e)
                return
            conn.setblocking(True)
            try:
                conn.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            except OSError:
                pass
            with self.lock:
                self.active += 1
                spawn = self.waiting == 0
                if spawn:
                    self.workers += 1
                else:
                    self.waiting -= 1
            # Workers stay for the next connection: starting a thread per
            # connection would cost more than the request.
            self.conns.put(conn)
            if spawn:
                threading.Thread(target=self._worker, daemon=True).start()

    def _worker(self):
        while True:
            conn = self.conns.get()
            self._serve(conn)
            with self.lock:
                self.waiting += 1

    # one connection (its own thread)

    def _serve(self, conn):
        buf = bytearray()
        try:
            while True:
                try:
                    req = self._read(conn, buf)
                except HttpError as e:
                    self._send(conn, None, e.status, "application/json",
                               dumps({"error": e.message}), False)
                    return
                if req is None:
                    return
                keep = self._handle(conn, req)
                if not keep:
                    return
        except OSError:
            pass
        finally:
            try:
                conn.close()
            except OSError:
                pass
            with self.lock:
                self.active -= 1

    def _wait_request(self, conn, buf):
        """Wait for the first byte of the next request; False to close."""
        if buf:
            return True
        idle_since = time.monotonic()
        stop_seen = None
        while True:
            conn.settimeout(0.25)
            try:
                data = conn.recv(65536)
            except socket.timeout:
                now = time.monotonic()
                if self.stopping:
                    stop_seen = stop_seen or now
                    if now - stop_seen >= DRAIN_IDLE:
                        return False
                if now - idle_since >= KEEPALIVE_IDLE:
                    return False
                continue
            finally:
                conn.settimeout(READ_TIMEOUT)
            if not data:
                return False
            buf += data
            return True

    def _recv_more(self, conn, buf):
        try:
            data = conn.recv(65536)
        except socket.timeout:
            raise HttpError(408, "the request did not arrive in time", close=True)
        if not data:
            raise ConnectionResetError("the client went away mid-request")
        buf += data

    def _read(self, conn, buf):
        if not self._wait_request(conn, buf):
            return None
        while True:
            end = buf.find(b"\r\n\r\n")
            if end >= 0:
                break
            if len(buf) > MAX_HEADER:
                raise HttpError(431, "the request's headers are too large", close=True)
            self._recv_more(conn, buf)
        head = bytes(buf[:end]).decode("latin-1")
        del buf[:end + 4]
        lines = head.split("\r\n")
        parts = lines[0].split(" ")
        if len(parts) != 3:
            raise HttpError(400, "bad request line %r" % lines[0][:100], close=True)
        req = Request()
        req.method, req.target, req.version = parts
        if req.version not in ("HTTP/1.1", "HTTP/1.0"):
            raise HttpError(505, "only HTTP/1.0 and HTTP/1.1 are spoken here", close=True)
        headers = {}
        for line in lines[1:]:
            name, sep, value = line.partition(":")
            if not sep or not name.strip():
                raise HttpError(400, "bad header line %r" % line[:100], close=True)
            headers[name.strip().lower()] = value.strip()
        req.headers = headers
        req.path = req.target.split("?", 1)[0]
        connection = headers.get("connection", "").lower()
        if req.version == "HTTP/1.1":
            req.keep_alive = "close" not in connection
        else:
            req.keep_alive = "keep-alive" in connection
        if headers.get("expect", "").lower() == "100-continue":
            conn.sendall(b"HTTP/1.1 100 Continue\r\n\r\n")
        if "chunked" in headers.get("transfer-encoding", "").lower():
            req.body = self._read_chunked(conn, buf)
        else:
            length = headers.get("content-length", "0")
            if not length.isdigit():
                raise HttpError(400, "bad Content-Length %r" % length[:40], close=True)
            n = int(length)
            if n > MAX_BODY:
                raise HttpError(413, "the body is larger than %d bytes" % MAX_BODY, close=True)
            while len(buf) < n:
                self._recv_more(conn, buf)
            req.body = bytes(buf[:n])
            del buf[:n]
        return req

    def _read_chunked(self, conn, buf):
        body = bytearray()
        while True:
            while b"\r\n" not in buf:
                if len(buf) > 1024:
                    raise HttpError(400, "bad chunk header", close=True)
                self._recv_more(conn, buf)
            line, _, _ = bytes(buf).partition(b"\r\n")
            del buf[:len(line) + 2]
            try:
                size = int(line.split(b";", 1)[0].strip(), 16)
            except ValueError:
                raise HttpError(400, "bad chunk size", close=True)
            if size == 0:
                while True:  # trailers, up to the empty line
                    while b"\r\n" not in buf:
                        self._recv_more(conn, buf)
                    line, _, _ = bytes(buf).partition(b"\r\n")
                    del buf[:len(line) + 2]
                    if not line:
                        return bytes(body)
            if len(body) + size > MAX_BODY:
                raise HttpError(413, "the body is larger than %d bytes" % MAX_BODY, close=True)
            while len(buf) < size + 2:
                self._recv_more(conn, buf)
            body += buf[:size]
            del buf[:size + 2]

    def _route(self, req):
        path, method = req.path, req.method
        if path in ("/", "/ping", "/health"):
            if method not in ("GET", "HEAD"):
                raise HttpError(405, "%s answers GET" % path)
            if path == "/":
                return 200, "text/plain; charset=utf-8", b"Healthy"
            return 200, "application/json", b"\n"
        if path in ("/score", "/invocations"):
            if method != "POST":
                raise HttpError(405, "%s answers POST" % path)
            if path == "/score":
                return self.app.score(req)
            return self.app.invocations(req)
        raise HttpError(404, "no route %s; POST /score or /invocations, GET / or /ping"
                        % path)

    def _handle(self, conn, req):
        t0 = time.monotonic()
        close = False
        try:
            status, ctype, body = self._route(req)
        except HttpError as e:
            status, ctype, close = e.status, "application/json", e.close
            if req.path == "/invocations":
                code = {400: "BAD_REQUEST", 415: "BAD_REQUEST", 500: "INTERNAL_ERROR"}.get(
                    e.status, "BAD_REQUEST")
                body = dumps({"error_code": code, "message": e.message})
            else:
                body = dumps({"error": e.message})
            log("%s %s %d (%.1f ms): %s" % (req.method, req.path, status,
                                           (time.monotonic() - t0) * 1000, e.message))
        except Exception as e:  # a bug of ours: say so, keep serving
            status, ctype = 500, "application/json"
            body = dumps({"error": "%s: %s" % (type(e).__name__, e)})
            log("%s %s failed:\n%s" % (req.method, req.path, traceback.format_exc().rstrip()))
        keep = req.keep_alive and not close and not self.stopping
        self._send(conn, req, status, ctype, body, keep)
        return keep

    def _send(self, conn, req, status, ctype, body, keep):
        head = ["%s %d %s" % ("HTTP/1.1", status, REASONS.get(status, "Error")),
                "Content-Type: " + ctype,
                "Content-Length: %d" % len(body),
                "Connection: " + ("keep-alive" if keep else "close"),
                "Server: runyard"]
        data = ("\r\n".join(head) + "\r\n\r\n").encode("latin-1")
        if req is None or req.method != "HEAD":
            data += body
        conn.sendall(data)


def main(argv=None):
    p = argparse.ArgumentParser(description="runyard's scoring server (started by runyardd)")
    p.add_argument("--service", required=True)
    p.add_argument("--dir", required=True)
    p.add_argument("--model", required=True)
    p.add_argument("--model-dir", required=True)
    p.add_argument("--framework")
    p.add_argument("--entry-script")
    p.add_argument("--source-dir")
    p.add_argument("--listen-fd", type=int, default=3)
    p.add_argument("--check-fd", type=int, default=4)
    args = p.parse_args(argv)

    wake_r, wake_w = socket.socketpair()
    for s in (wake_r, wake_w):
        s.setblocking(False)
    stop = {"public": False, "stop": False}
    server = None

    def on_signal(signum, frame):
        if server is None:
            stop["public" if signum == signal.SIGUSR1 else "stop"] = True
        elif signum == signal.SIGUSR1:
            server.want_public = True
        else:
            server.want_stop = True

    signal.set_wakeup_fd(wake_w.fileno(), warn_on_full_buffer=False)
    signal.signal(signal.SIGUSR1, on_signal)
    signal.signal(signal.SIGTERM, on_signal)
    signal.signal(signal.SIGINT, on_signal)

    public = socket.socket(fileno=args.listen_fd)
    check = socket.socket(fileno=args.check_fd)
    for s in (public, check):
        s.setblocking(False)
    log("runyard scoring server for service %s (pid %d, python %s)"
        % (args.service, os.getpid(), sys.version.split()[0]))
    try:
        if args.entry_script:
            app = ScriptApp(args.model, args.entry_script, args.source_dir)
        else:
            app = SklearnApp(args.model, args.model_dir)
    except Exception as e:
        # The traceback, then one line that says it all: the daemon quotes
        # the last lines of the log when a start fails.
        log(traceback.format_exc().rstrip())
        log("cannot load model %s: %s: %s" % (args.model, type(e).__name__, e))
        return 3
    server = Server(app, public, check)
    server.want_public = stop["public"]
    server.want_stop = stop["stop"]
    server.loop(wake_r)
    return 0


if __name__ == "__main__":
    sys.exit(main())
