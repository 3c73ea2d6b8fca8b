"""The implementation of runyard's run-side API (see runyard/__init__.py)."""

import atexit
import binascii
import json
import os
import sys
import threading
import time
from array import array

# Limits; runyardd enforces them too (docs/tracking.md).
LINE_MAX = 1 << 20      # bytes of one line of the tracking file
NAME_MAX = 255          # metric and column names, in characters
KEY_MAX = 100           # tag and property keys
VALUE_MAX = 1000        # tag and property values
TAGS_MAX = 50
PROPERTIES_MAX = 50
PATH_MAX = 1024         # artifact names of uploads, bytes
# What one point may take in a line: a line also holds the name and a time.
POINT_MAX = LINE_MAX - 4096

# Batching: points per line, a series' buffer length that makes the logging
# call write at once (two list entries per point), the background flush.
CHUNK = 4096
FLUSH_LEN = 2 * CHUNK
FLUSH_LINES = 1024      # other lines (lists, rows, tags, ...) waiting
FLUSH_SECONDS = 0.5

_time = time.time
_NUMBER = frozenset((float, int))
_enc = json.JSONEncoder(allow_nan=False, separators=(",", ":")).encode
_BIG_ENDIAN = sys.byteorder == "big"


def _packed(numbers):
    """base64 of the numbers as little-endian doubles: the "values_f64" and
    "ts_f64" of a metric line, some twenty times cheaper to make than
    decimal JSON. TypeError or OverflowError when one is not a number."""
    a = array("d", numbers)
    if _BIG_ENDIAN:
        a.byteswap()
    return binascii.b2a_base64(a.tobytes(), newline=False).decode("ascii")


class RunyardError(Exception):
    """Something runyard could not do."""


class LimitError(RunyardError, ValueError):
    """A value breaks one of the limits (name lengths, counts, sizes)."""


class ConflictError(RunyardError, ValueError):
    """A property is already set to another value; properties cannot change."""


class ServiceException(RunyardError):
    """The service (here runyardd) refused a request or could not be asked
    (azureml.exceptions.ServiceException)."""


class UserErrorException(RunyardError, ValueError):
    """A request that cannot be done as given: an unknown name, a bad value
    (azureml.exceptions.UserErrorException)."""


class ComputeTargetException(RunyardError):
    """A compute target that does not exist or cannot be made
    (azureml.exceptions.ComputeTargetException)."""


class DaemonError(ServiceException):
    """runyardd could not be reached or refused a request; .code is its error code."""

    def __init__(self, message, code=None):
        super().__init__(message)
        self.code = code


# -- checks ---------------------------------------------------------------------


def _utf8(s, what):
    try:
        s.encode("utf-8")
    except UnicodeEncodeError:
        raise ValueError("%s %r is not valid Unicode text" % (what, s[:40])) from None


def _check_name(name, what="metric name"):
    if not isinstance(name, str):
        raise TypeError("the %s must be a string, not %s" % (what, type(name).__name__))
    if not name:
        raise LimitError("the %s is empty" % what)
    if len(name) > NAME_MAX:
        raise LimitError("%s %r... is %d characters long; the limit is %d"
                         % (what, name[:40], len(name), NAME_MAX))
    _utf8(name, what)


def tags_dict(tags):
    """Tags as given to set_tags: a dict, or keys (a string or a list) with
    empty values."""
    if isinstance(tags, str):
        return {tags: ""}
    if not isinstance(tags, dict):
        return {k: "" for k in tags}
    return tags


def none_tags(tags):
    """Tags as the cloud reads them back: a tag set without a value is None."""
    return {k: (None if v == "" else v) for k, v in (tags or {}).items()}


def _check_kv(key, value, what):
    if not isinstance(key, str):
        raise TypeError("a %s key must be a string, not %s" % (what, type(key).__name__))
    if not key:
        raise LimitError("a %s key is empty" % what)
    if len(key) > KEY_MAX:
        raise LimitError("%s key %r... is %d characters long; the limit is %d"
                         % (what, key[:40], len(key), KEY_MAX))
    _utf8(key, "%s key" % what)
    value = "" if value is None else value if isinstance(value, str) else str(value)
    if len(value) > VALUE_MAX:
        raise LimitError("the value of %s %r is %d characters long; the limit is %d"
                         % (what, key, len(value), VALUE_MAX))
    _utf8(value, "the value of %s %r" % (what, key))
    return value


def _check_path(name):
    if not isinstance(name, str):
        raise TypeError("an artifact name must be a string, not %s" % type(name).__name__)
    _utf8(name, "artifact name")
    parts = name.split("/")
    if (not name or name.startswith("/") or len(name.encode()) > PATH_MAX
            or any(p in ("", ".", "..") for p in parts)
            or any(ord(c) < 0x20 or c in "\x7f\\" for c in name)):
        raise ValueError("artifact name %r must be a relative path of at most %d bytes, "
                         "without empty, '.' or '..' components" % (name, PATH_MAX))
    return name


def _scalar(value, name):
    """A value a point can hold: a number or a string."""
    if isinstance(value, str):
        _utf8(value, "a value of metric %r" % name)
        return value
    if isinstance(value, bool):
        return int(value)
    if isinstance(value, (int, float)):
        return value if value.__class__ in _NUMBER else (
            int(value) if isinstance(value, int) else float(value))
    if hasattr(value, "__index__"):            # numpy integers
        return int(value.__index__())
    if hasattr(value, "__float__") and not isinstance(value, (bytes, bytearray)):
        return float(value)                    # numpy floats, 0-d arrays, Decimal
    raise TypeError("metric %r: a value must be a number or a string, not %s"
                    % (name, type(value).__name__))


_INFINITIES = (float("inf"), float("-inf"))


def _finite(v):
    """JSON has no NaN or infinities: they travel, and are stored, as strings."""
    if v.__class__ is float and (v != v or v in _INFINITIES):
        return "NaN" if v != v else ("Infinity" if v > 0 else "-Infinity")
    return v


def _encode_values(values):
    try:
        return _enc(values)
    except ValueError:  # NaN or an infinity: stored as strings
        return _enc([_finite(v) for v in values])


def _sized(text, what):
    if len(text) > POINT_MAX:
        raise LimitError("%s takes %d bytes; at most %d fit in the tracking file's line"
                         % (what, len(text), POINT_MAX))
    return text


# -- the tracking file --------------------------------------------------------------


class _Writer:
    """Buffers what a run writes and appends it to the tracking file.

    Scalar points go into one list per series, two entries per point (value,
    time), appended without a lock: a flush takes a whole number of points
    from the front of each list and deletes exactly those, so points appended
    meanwhile stay for the next flush. Every other line waits in `lines`, in
    order. Flushes are serialised by `lock` and write with one os.write."""

    def __init__(self, path):
        self.path = path
        self.fd = None
        self.lock = threading.Lock()
        self.series = {}
        self.names = {}       # name -> its JSON
        self.lines = []
        self.written = 0      # the file's size after our last write
        self.thread = None
        self.warned = False
        atexit.register(self.flush)
        if hasattr(os, "register_at_fork"):
            os.register_at_fork(after_in_child=self._after_fork)

    def _after_fork(self):
        # The parent flushes what it buffered; the child starts empty (and
        # with a lock the parent's flusher thread cannot be holding).
        self.lock = threading.Lock()
        self.series.clear()
        self.lines = []
        self.thread = None

    def start(self):
        if self.thread is None:
            self.thread = threading.Thread(target=self._loop, name="runyard-flush", daemon=True)
            self.thread.start()
            # A multiprocessing worker ends with os._exit, which skips atexit;
            # its finalizers still run.
            mp = sys.modules.get("multiprocessing.util")
            if mp is not None:
                mp.Finalize(None, self.flush, exitpriority=100)

    def _loop(self):
        me = self.thread
        while self.thread is me:
            time.sleep(FLUSH_SECONDS)
            self.flush()

    def add_line(self, line):
        """Queue one line after every point buffered so far, so the file
        holds what the run wrote in the order it wrote it."""
        with self.lock:
            for name, s in list(self.series.items()):
                if len(s) > 1:
                    self._take(name, s, self.lines)
            self.lines.append(line)
            full = len(self.lines) >= FLUSH_LINES
        if full:
            self.flush()
        self.start()

    def _take(self, name, s, out):
        n = len(s) & ~1
        if not n:
            return
        chunk = s[:n]
        del s[:n]
        jname = self.names[name]
        values, ts = chunk[0::2], chunk[1::2]
        for i in range(0, len(values), CHUNK):
            self._lines(jname, values[i:i + CHUNK], ts[i:i + CHUNK], out)

    def _lines(self, jname, values, ts, out):
        try:
            line = '{"op":"metric","name":%s,"values_f64":"%s","ts_f64":"%s"}\n' % (
                jname, _packed(values), _packed(ts))
        except (TypeError, OverflowError):  # strings, or integers beyond a double
            line = '{"op":"metric","name":%s,"values":%s,"ts_f64":"%s"}\n' % (
                jname, _encode_values(values), _packed(ts))
        if len(line) > LINE_MAX and len(values) > 1:
            half = len(values) // 2
            self._lines(jname, values[:half], ts[:half], out)
            self._lines(jname, values[half:], ts[half:], out)
        else:
            out.append(line)

    def flush(self):
        with self.lock:
            out, self.lines = self.lines, []
            for name, s in list(self.series.items()):
                if len(s) > 1:
                    self._take(name, s, out)
            if out:
                self._write("".join(out).encode())

    def _write(self, data):
        try:
            if self.fd is None:
                self.fd = os.open(self.path, os.O_WRONLY | os.O_APPEND | os.O_CREAT
                                  | getattr(os, "O_CLOEXEC", 0), 0o600)
            view = memoryview(data)
            while view:
                view = view[os.write(self.fd, view):]
            self.written = os.lseek(self.fd, 0, os.SEEK_CUR)
        except OSError as e:
            if not self.warned:
                self.warned = True
                print("runyard: cannot write to %s (%s); metrics are being lost"
                      % (self.path, e), file=sys.stderr)


# -- the socket ----------------------------------------------------------------------


class _Client:
    """The wire protocol (docs/protocol.md): RYD1, a big-endian length, JSON."""

    def __init__(self, path, timeout=30.0):
        self.path = path
        self.timeout = timeout
        self.sock = None
        self.next_id = 1
        if hasattr(os, "register_at_fork"):
            # A forked child opens its own connection; the parent's stays the parent's.
            os.register_at_fork(after_in_child=self._forget)

    def _forget(self):
        self.sock = None

    def _connect(self):
        import socket
        s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        s.settimeout(self.timeout)
        try:
            s.connect(self.path)
        except OSError:
            s.close()
            raise
        self.sock = s
        self._request("hello", {"proto": 1, "client": "runyard-python/0.1.0"})

    def _recv(self, n):
        buf = b""
        while len(buf) < n:
            chunk = self.sock.recv(n - len(buf))
            if not chunk:
                raise OSError("runyardd closed the connection")
            buf += chunk
        return buf

    def _request(self, op, args):
        import struct
        rid = self.next_id
        self.next_id += 1
        payload = json.dumps({"id": rid, "op": op, "args": args}).encode()
        self.sock.sendall(b"RYD1" + struct.pack(">I", len(payload)) + payload)
        while True:
            msg = self._frame()
            if msg.get("id") == rid:
                break
        if not msg.get("ok"):
            err = msg.get("error") or {}
            raise DaemonError("%s (%s)" % (err.get("message"), err.get("code")), err.get("code"))
        return msg.get("result") or {}

    def _frame(self):
        import struct
        header = self._recv(8)
        if header[:4] != b"RYD1":
            raise OSError("runyardd sent a frame with a wrong magic")
        return json.loads(self._recv(struct.unpack(">I", header[4:])[0]))

    def subscribe(self, op, args):
        """Send op (run.watch) and yield its result, then every event pushed
        on its subscription, on this connection, until the caller stops.
        Waits as long as the daemon takes (the socket has no timeout)."""
        import struct
        if self.sock is None:
            try:
                self._connect()
            except (OSError, ValueError) as e:
                self.close()
                raise DaemonError("cannot reach runyardd at %s: %s" % (self.path, e)) from None
        rid = self.next_id
        self.next_id += 1
        payload = json.dumps({"id": rid, "op": op, "args": args}).encode()
        try:
            self.sock.sendall(b"RYD1" + struct.pack(">I", len(payload)) + payload)
            self.sock.settimeout(None)
            sub = None
            while True:
                msg = self._frame()
                if sub is None and msg.get("id") == rid:
                    if not msg.get("ok"):
                        err = msg.get("error") or {}
                        raise DaemonError("%s (%s)" % (err.get("message"), err.get("code")),
                                          err.get("code"))
                    result = msg.get("result") or {}
                    sub = result.get("sub")
                    yield result
                elif sub is not None and msg.get("sub") == sub and "event" in msg:
                    yield msg
        except (OSError, ValueError) as e:
            self.close()
            raise DaemonError("lost runyardd at %s: %s" % (self.path, e)) from None

    def call(self, op, args):
        for attempt in (0, 1):
            try:
                if self.sock is None:
                    self._connect()
                return self._request(op, args)
            except DaemonError:
                raise
            except (OSError, ValueError) as e:
                self.close()
                if attempt:
                    raise DaemonError("cannot reach runyardd at %s: %s" % (self.path, e)) from None

    def close(self):
        if self.sock is not None:
            self.sock.close()
            self.sock = None


# -- runs ------------------------------------------------------------------------------


class _Experiment:
    def __init__(self, name, socket_path=None):
        self.name = name
        self._socket = socket_path
        self._ws = None

    @property
    def workspace(self):
        """The runyardd the run belongs to (runyard.Workspace), or None offline."""
        if self._ws is None and self._socket:
            from runyard._models import Workspace
            self._ws = Workspace(socket_path=self._socket)
        return self._ws

    @workspace.setter
    def workspace(self, ws):
        self._ws = ws

    def __repr__(self):
        return "Experiment(name=%r)" % self.name


class Run:
    """A run inside runyard: what it is given lands in the run's history."""

    def __init__(self, run_id, experiment, tracking_file, token, socket_path):
        self.id = run_id
        self.experiment = _Experiment(experiment, socket_path)
        self._w = _Writer(tracking_file)
        self._series = self._w.series
        self._uploads = os.path.join(os.path.dirname(os.path.abspath(tracking_file)), "uploads")
        self._token = token
        self._client = _Client(socket_path) if socket_path else None
        self._tags = None        # keys known to be set (fetched once, then kept)
        self._properties = None  # key -> value known to be set
        self._files = 0

    def __repr__(self):
        return "Run(id=%r, experiment=%r)" % (self.id, self.experiment.name)

    @property
    def display_name(self):
        return self.id

    @property
    def parent(self):
        return None

    # -- metrics -----------------------------------------------------------------

    def log(self, name, value, description="", step=None):
        """Add a point (a number or a string) to the series name."""
        s = self._series.get(name)
        if s is not None and step is None and value.__class__ in _NUMBER:
            s.append(value)
            s.append(_time())
            if len(s) >= FLUSH_LEN:
                self._w.flush()
            return
        self._log_slow(name, value, step)

    def _log_slow(self, name, value, step):
        w = self._w
        if name not in w.names:
            _check_name(name)
        value = _scalar(value, name)
        if value.__class__ is str:
            _sized(_enc(value), "the value of metric %r" % name)
        if step is not None:
            if isinstance(step, bool) or not hasattr(step, "__index__") or step.__index__() < 0:
                raise ValueError("metric %r: step must be an integer >= 0" % name)
            self._point(name, "scalar", value, step=step.__index__())
            return
        with w.lock:
            if name not in w.names:
                w.names[name] = json.dumps(name)
            s = w.series.get(name)
            if s is None:
                w.series[name] = [value, _time()]
            else:
                s.append(value)
                s.append(_time())
        w.start()

    def _point(self, name, kind, value, step=None, what=None):
        """Queue a one-point line."""
        if name not in self._w.names:
            _check_name(name)
        text = _sized(_enc(value), what or "the value of metric %r" % name)
        line = '{"op":"metric","kind":"%s","name":%s,"values":[%s],"ts":%r%s}\n' % (
            kind, json.dumps(name), text, _time(),
            ',"steps":[%d]' % step if step is not None else "")
        self._w.add_line(line)

    def log_list(self, name, value, description=""):
        """Log a list of numbers or strings as one point of the series name."""
        _check_name(name)
        if isinstance(value, (str, bytes, dict)):
            raise TypeError("metric %r: log_list takes a list of values, not %s"
                            % (name, type(value).__name__))
        values = [_finite(_scalar(v, name)) for v in value]
        self._point(name, "list", values, what="list %r" % name)

    def log_row(self, name, description=None, **kwargs):
        """Add a row {column: value} to the table name."""
        _check_name(name)
        if not kwargs:
            raise ValueError("log_row(%r) needs at least one column=value" % name)
        row = {}
        for col, v in kwargs.items():
            _check_name(col, "column name")
            row[col] = _finite(_scalar(v, name))
        self._point(name, "row", row, what="row of %r" % name)

    def log_table(self, name, value, description=""):
        """Log a table {column: [values]} as one point of the series name."""
        _check_name(name)
        if not isinstance(value, dict) or not value:
            raise TypeError("metric %r: log_table takes a dict of columns" % name)
        table = {}
        for col, vs in value.items():
            _check_name(col, "column name")
            if isinstance(vs, (str, bytes, dict)):
                raise TypeError("metric %r: column %r must be a list" % (name, col))
            table[col] = [_finite(_scalar(v, name)) for v in vs]
        self._point(name, "table", table, what="table %r" % name)

    def _log_json(self, name, value):
        """The cloud's structured metrics (confusion matrix, accuracy table,
        residuals, predictions): one string point holding the JSON."""
        self.log(name, value if isinstance(value, str) else json.dumps(value))

    def log_confusion_matrix(self, name, value, description=""):
        self._log_json(name, value)

    def log_accuracy_table(self, name, value, description=""):
        self._log_json(name, value)

    def log_residuals(self, name, value, description=""):
        self._log_json(name, value)

    def log_predictions(self, name, value, description=""):
        self._log_json(name, value)

    def get_secret(self, name):
        raise NotImplementedError("Run.get_secret (Key Vault) is not supported by runyard; "
                                  "read secrets from environment variables")

    def get_secrets(self, secrets):
        return {s: self.get_secret(s) for s in secrets}

    def log_image(self, name, path=None, plot=None, description=""):
        """Store an image file (path) or a matplotlib figure (plot) as a point of name."""
        _check_name(name)
        if (path is None) == (plot is None):
            raise ValueError("log_image(%r) takes either path or plot" % name)
        safe = "".join(c if c.isalnum() or c in "._-" else "_" for c in name)[:100]
        ext = os.path.splitext(path)[1] if path is not None else ".png"
        artifact = "images/%s-%s%s" % (safe or "image", os.urandom(4).hex(), ext[:16])
        if path is not None:
            self._upload(artifact, path)
        else:
            self._upload_figure(artifact, plot)
        self._point(name, "image", {"path": artifact})

    # -- files ----------------------------------------------------------------------

    def _upload_target(self, name):
        os.makedirs(self._uploads, exist_ok=True)
        self._files += 1
        base = "".join(c if c.isalnum() or c in "._-" else "_"
                       for c in os.path.basename(name))[:100]
        return "%d-%d-%s" % (os.getpid(), self._files, base or "file")

    def _upload(self, name, path_or_stream):
        import shutil
        _check_path(name)
        target = self._upload_target(name)
        dest = os.path.join(self._uploads, target)
        if isinstance(path_or_stream, (str, bytes, os.PathLike)):
            if not os.path.isfile(path_or_stream):
                raise FileNotFoundError("upload %r: %s is not a file" % (name, path_or_stream))
            shutil.copyfile(path_or_stream, dest)
        else:
            with open(dest, "wb") as out:
                data = path_or_stream.read()
                out.write(data.encode() if isinstance(data, str) else data)
        self._w.add_line('{"op":"upload","name":%s,"file":%s}\n'
                         % (json.dumps(name), json.dumps(target)))
        return name

    def _upload_figure(self, artifact, plot):
        _check_path(artifact)
        target = self._upload_target(artifact)
        dest = os.path.join(self._uploads, target)
        fig = plot.gcf() if hasattr(plot, "gcf") else plot
        fig.savefig(dest, format="png")
        self._w.add_line('{"op":"upload","name":%s,"file":%s}\n'
                         % (json.dumps(artifact), json.dumps(target)))

    def upload_file(self, name, path_or_stream, **kwargs):
        """Store a file (a path or a readable stream) as the run's artifact name."""
        return self._upload(name, path_or_stream)

    def upload_files(self, names, paths, **kwargs):
        return [self._upload(n, p) for n, p in zip(names, paths)]

    def upload_folder(self, name, path, **kwargs):
        """Store every file under path as artifacts name/RELATIVE-PATH."""
        if not os.path.isdir(path):
            raise NotADirectoryError("upload_folder(%r): %s is not a directory" % (name, path))
        done = []
        for root, dirs, files in os.walk(path):
            dirs.sort()
            for f in sorted(files):
                full = os.path.join(root, f)
                if os.path.isfile(full):
                    rel = os.path.relpath(full, path).replace(os.sep, "/")
                    done.append(self._upload(name.rstrip("/") + "/" + rel, full))
        return done

    # -- tags and properties -----------------------------------------------------------

    def _known(self):
        """Tags and properties already set, fetched once (best effort)."""
        if self._tags is None:
            self._tags, self._properties = set(), {}
            if self._client is not None:
                try:
                    ctx = self._client.call("run.context", {"token": self._token})
                    self._tags = set(ctx.get("tags") or {})
                    self._properties = dict(ctx.get("properties") or {})
                except DaemonError:
                    pass

    def tag(self, key, value=None):
        """Set a tag (mutable); value None sets an empty value."""
        self.set_tags({key: value})

    def set_tags(self, tags):
        """Set several tags: a dict, or keys (a string or a list) with empty values."""
        checked = {k: _check_kv(k, v, "tag") for k, v in tags_dict(tags).items()}
        self._known()
        new = set(checked) - self._tags
        if len(self._tags) + len(new) > TAGS_MAX:
            raise LimitError("a run has at most %d tags; it has %d and %d more were given"
                             % (TAGS_MAX, len(self._tags), len(new)))
        for k, v in checked.items():
            self._w.add_line('{"op":"tag","key":%s,"value":%s}\n' % (json.dumps(k), json.dumps(v)))
        self._tags |= new

    def remove_tags(self, tags):
        if isinstance(tags, str):
            tags = [tags]
        for k in tags:
            _check_kv(k, "", "tag")
            self._w.add_line('{"op":"tag","key":%s,"value":null}\n' % json.dumps(k))
        self._known()
        self._tags -= set(tags)

    def add_properties(self, properties):
        """Add properties: immutable, so setting one to another value is a ConflictError."""
        checked = {k: _check_kv(k, v, "property") for k, v in properties.items()}
        self._known()
        for k, v in checked.items():
            if k in self._properties and self._properties[k] != v:
                raise ConflictError("property %r is already set to %r; properties cannot change"
                                    % (k, self._properties[k]))
        new = set(checked) - set(self._properties)
        if len(self._properties) + len(new) > PROPERTIES_MAX:
            raise LimitError("a run has at most %d properties; it has %d and %d more were given"
                             % (PROPERTIES_MAX, len(self._properties), len(new)))
        for k, v in checked.items():
            self._w.add_line('{"op":"property","key":%s,"value":%s}\n'
                             % (json.dumps(k), json.dumps(v)))
        self._properties.update(checked)

    # -- questions (over the socket) -----------------------------------------------------

    def flush(self, timeout_seconds=None):
        """Write everything buffered to the tracking file now."""
        self._w.flush()

    def _ask(self, op, **args):
        if self._client is None:
            raise DaemonError("RUNYARD_SOCKET is not set: runyardd cannot be asked")
        self._w.flush()
        args["token"] = self._token
        args["sync"] = self._w.written
        return self._client.call(op, args)

    def get_context_info(self):
        return self._ask("run.context")

    def get_status(self):
        return self._ask("run.context")["status"]

    def get_tags(self):
        return none_tags(self._ask("run.context").get("tags"))

    def get_properties(self):
        return self._ask("run.context").get("properties") or {}

    def get_details(self):
        ctx = self._ask("run.context")
        return {"runId": ctx.get("id"), "status": ctx.get("status"),
                "experiment": ctx.get("experiment"), "tags": none_tags(ctx.get("tags")),
                "properties": ctx.get("properties") or {}}

    @property
    def number(self):
        return self._ask("run.context").get("seq")

    def get_metrics(self, name=None, recursive=False, run_type=None, populate=False):
        """{name: value} as the cloud original answers: a single value, or a list of
        the values when a series has several; rows are gathered into columns."""
        return collect_metrics(lambda **args: self._ask("run.metrics", **args), name)

    @property
    def input_datasets(self):
        """{name: path} of the run's inputs (RUNYARD_INPUT_<name> variables)."""
        return input_datasets()

    def complete(self, set_status=True):
        """Runs end when their process does; this only flushes."""
        self._w.flush()

    # -- models (docs/models.md) -----------------------------------------------------------

    def register_model(self, model_name, model_path=None, tags=None, properties=None,
                       model_framework=None, model_framework_version=None, description=None,
                       datasets=None, sample_input_dataset=None, sample_output_dataset=None,
                       resource_configuration=None, **kwargs):
        """Register this run's output model_path (a file or folder under the run's
        working directory, like "outputs/model.joblib"; default: model_name) as
        a new version of model_name, and return the Model."""
        from runyard._models import register_in_run
        return register_in_run(self, model_name, model_path, tags, properties,
                               model_framework, model_framework_version, description,
                               resource_configuration)

    def fail(self, error_details=None, error_code=None, set_status=True):
        self._w.flush()

    # -- children (docs/sdk.md) -----------------------------------------------------------

    def _handle(self):
        ws = self.experiment.workspace
        if ws is None:
            raise DaemonError("RUNYARD_SOCKET is not set: runyardd cannot be asked")
        from runyard._notebook import RunHandle
        return RunHandle(ws, self.id)

    def child_run(self, name=None, run_id=None, outputs=None):
        """A child of this run that this process runs (an interactive run:
        log to it, then complete() it)."""
        self._w.flush()
        return self._handle().child_run(name, run_id, outputs)

    def create_children(self, count=None, tag_key=None, tag_values=None):
        return self._handle().create_children(count, tag_key, tag_values)

    def submit_child(self, config, tags=None, **kwargs):
        """Submit a ScriptRunConfig as a child of this run (queued like any run)."""
        return self._handle().submit_child(config, tags=tags)

    def get_children(self, recursive=False, tags=None, properties=None, type=None,
                     status=None, **kwargs):
        return self._handle().get_children(recursive, tags, properties, type, status)


class OfflineRun:
    """What get_run() returns outside runyard: prints what it is given."""

    def __init__(self):
        self.id = "OfflineRun_%s" % os.urandom(8).hex()
        self.experiment = _Experiment("offline")
        self._tags = {}
        self._properties = {}

    def __repr__(self):
        return "OfflineRun(id=%r)" % self.id

    @property
    def display_name(self):
        return self.id

    @property
    def parent(self):
        return None

    def _emit(self, kind, name, value):
        print("Attempted to log %s metric %s:\n%s" % (kind, name, value))

    def log(self, name, value, description="", step=None):
        self._emit("scalar", name, value)

    def log_list(self, name, value, description=""):
        self._emit("list", name, value)

    def log_row(self, name, description=None, **kwargs):
        self._emit("row", name, kwargs)

    def log_table(self, name, value, description=""):
        self._emit("table", name, value)

    def log_image(self, name, path=None, plot=None, description=""):
        self._emit("image", name, path if path is not None else plot)

    def log_confusion_matrix(self, name, value, description=""):
        self._emit("confusion_matrix", name, value)

    def log_accuracy_table(self, name, value, description=""):
        self._emit("accuracy_table", name, value)

    def log_residuals(self, name, value, description=""):
        self._emit("residuals", name, value)

    def log_predictions(self, name, value, description=""):
        self._emit("predictions", name, value)

    def _no_daemon(self, what):
        raise RunyardError("%s: not inside a runyard run; in a notebook use "
                           "Experiment(ws, name).start_logging()" % what)

    def child_run(self, name=None, run_id=None, outputs=None):
        self._no_daemon("child_run")

    def create_children(self, count=None, tag_key=None, tag_values=None):
        self._no_daemon("create_children")

    def submit_child(self, config, tags=None, **kwargs):
        self._no_daemon("submit_child")

    def get_children(self, *args, **kwargs):
        return []

    def get_secret(self, name):
        raise NotImplementedError("Run.get_secret (Key Vault) is not supported by runyard; "
                                  "read secrets from environment variables")

    def tag(self, key, value=None):
        self.set_tags({key: value})

    def set_tags(self, tags):
        if isinstance(tags, str):
            tags = {tags: ""}
        elif not isinstance(tags, dict):
            tags = {k: "" for k in tags}
        for k, v in tags.items():
            self._tags[k] = _check_kv(k, v, "tag")

    def remove_tags(self, tags):
        for k in [tags] if isinstance(tags, str) else tags:
            self._tags.pop(k, None)

    def get_tags(self):
        return none_tags(self._tags)

    def add_properties(self, properties):
        for k, v in properties.items():
            v = _check_kv(k, v, "property")
            if k in self._properties and self._properties[k] != v:
                raise ConflictError("property %r is already set to %r; properties cannot change"
                                    % (k, self._properties[k]))
            self._properties[k] = v

    def get_properties(self):
        return dict(self._properties)

    def upload_file(self, name, path_or_stream, **kwargs):
        print("Attempted to upload file %s" % name)
        return name

    def upload_files(self, names, paths, **kwargs):
        return [self.upload_file(n, p) for n, p in zip(names, paths)]

    def upload_folder(self, name, path, **kwargs):
        print("Attempted to upload folder %s" % name)
        return []

    def get_status(self):
        return "Running"

    def get_metrics(self, name=None, recursive=False, run_type=None, populate=False):
        return {}

    @property
    def input_datasets(self):
        return input_datasets()

    def get_details(self):
        return {"runId": self.id, "status": "Running", "tags": self.get_tags(),
                "properties": self.get_properties()}

    def flush(self, timeout_seconds=None):
        pass

    def complete(self, set_status=True):
        pass

    def register_model(self, model_name, model_path=None, **kwargs):
        raise RunyardError("register_model(%r): not inside a runyard run; register a local "
                           "file with Model.register(workspace, model_path, model_name)"
                           % model_name)

    def fail(self, error_details=None, error_code=None, set_status=True):
        pass


def _points(ask, name):
    values, after = [], 0
    while True:
        page = ask(name=name, after=after, limit=100000)
        values += [p["value"] for p in page["points"]]
        if not page.get("more"):
            return page["kind"], values
        after = page["next"]


def collect_metrics(ask, name=None):
    """get_metrics() of a run, inside it or from outside: ask(**args) calls
    run.metrics. {name: value}: a single value, or the list of values when a
    series has several; rows and tables as {column: [values]}; images as
    artifact paths."""
    names = [name] if name is not None else [m["name"] for m in ask()["metrics"]]
    out = {}
    for n in names:
        try:
            kind, values = _points(ask, n)
        except DaemonError as e:
            if e.code == "NotFound" and name is not None:
                return {}
            raise
        if kind in ("row", "table"):
            cols = {}
            for v in values:
                for c, x in v.items():
                    cols.setdefault(c, []).extend(x if kind == "table" else [x])
            out[n] = cols
        elif kind == "image":
            paths = [v.get("path") for v in values]
            out[n] = paths[0] if len(paths) == 1 else paths
        else:
            out[n] = values[0] if len(values) == 1 else values
    return out


INPUT_PREFIX = "RUNYARD_INPUT_"


def input_datasets():
    """{name: path} of the run's inputs, from the variables RUNYARD_INPUT_<name>
    (the name as the submit gave it)."""
    from runyard._data import run_input
    return {k[len(INPUT_PREFIX):]: run_input(k[len(INPUT_PREFIX):], v)
            for k, v in os.environ.items()
            if k.startswith(INPUT_PREFIX) and len(k) > len(INPUT_PREFIX)}


_current = None
_current_lock = threading.Lock()


def _make(live_cls=Run, offline_cls=OfflineRun):
    env = os.environ
    if env.get("RUNYARD_RUN_ID") and env.get("RUNYARD_TRACKING_FILE"):
        return live_cls(env["RUNYARD_RUN_ID"], env.get("RUNYARD_EXPERIMENT", "default"),
                        env["RUNYARD_TRACKING_FILE"], env.get("RUNYARD_RUN_TOKEN", ""),
                        env.get("RUNYARD_SOCKET"))
    return offline_cls()


def get_run(_live_cls=Run, _offline_cls=OfflineRun):
    """The run this process belongs to (one object per process), or an
    OfflineRun outside runyard."""
    global _current
    with _current_lock:
        if _current is None:
            _current = _make(_live_cls, _offline_cls)
        return _current
