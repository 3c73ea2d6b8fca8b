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

Two sets of routes, each answering as the server its clients were written
for (the conformance table in docs/models.md lists every row):

  Azure ML's inference server (azureml-inference-server-http 1.x)
    GET  /              "Healthy"
    POST /score         {"data": [[...], ...], "method": ...}, or the raw body
                        for an entry script's run(raw_data); GET /score?data=...
                        passes the query as JSON; OPTIONS /score answers 200
    GET  /swagger.json  OpenAPI 2 (?version=3: OpenAPI 3) of the service
    errors {"message": ...}; headers x-ms-run-fn-exec-ms,
    x-ms-run-function-failed, x-request-id, x-ms-request-id,
    x-ms-client-request-id, TraceId

  MLflow 2.x's scoring server
    POST /invocations   JSON with one of dataframe_split, dataframe_records,
                        instances, inputs (and params), or text/csv
                        -> {"predictions": ...}
    GET  /ping, /health, /version
    errors {"error_code": "BAD_REQUEST", "message": ...}; 415 in text/plain

Standard library only, plus joblib, numpy and scikit-learn for the no-code
server (what the model needs is the interpreter's business).
"""

import argparse
import csv
import importlib.util
import inspect
import io
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
import urllib.parse

MAX_HEADER = 64 * 1024
MAX_BODY = 64 * 1024 * 1024
MAX_CONNECTIONS = 512
KEEPALIVE_IDLE = 60.0   # an idle kept-alive connection is closed after this
DRAIN_IDLE = 0.5        # ... and after this once the server is stopping
DRAIN_MAX = 25.0        # runyardd kills a stopping server after 30 s
READ_TIMEOUT = 30.0     # a request that has begun must go on arriving
ID_LIMIT = 100          # the Azure peer's limit on x-request-id and its kin

# The MLflow release whose scoring server /invocations follows: GET /version
# answers it, as the peer answers its own version.
MLFLOW_VERSION = "2.11.3"

REASONS = {200: "OK", 201: "Created", 202: "Accepted", 204: "No Content",
           400: "Bad Request", 401: "Unauthorized", 403: "Forbidden", 409: "Conflict",
           422: "Unprocessable Entity", 429: "Too Many Requests", 502: "Bad Gateway",
           503: "Service Unavailable", 504: "Gateway Timeout",
           404: "Not Found", 405: "Method Not Allowed",
           408: "Request Timeout", 411: "Length Required", 413: "Payload Too Large",
           415: "Unsupported Media Type", 431: "Request Header Fields Too Large",
           500: "Internal Server Error", 505: "HTTP Version Not Supported"}

# The peers' words, where a client may show them.
AZ_NOT_FOUND = ("The requested URL was not found on the server. If you entered the URL "
                "manually please check your spelling and try again.")
AZ_NOT_ALLOWED = "The method is not allowed for the requested URL."
AZ_RUN_FAILED = "An unexpected error occurred in scoring script. Check the logs for more info."
AZ_NOT_JSON = "Expects Content-Type to be application/json"
MLF_FORMATS = ("dataframe_split", "dataframe_records", "instances", "inputs")
MLF_REQUIRED = ("The input must be a JSON dictionary with exactly one of the input fields "
                "{'dataframe_split', 'dataframe_records', 'instances', 'inputs'}")
MLF_PROTOCOL = ("The MLflow scoring protocol changed in MLflow 2.0: a request names its "
                "format in the body (dataframe_split, dataframe_records, instances or "
                "inputs), not in the Content-Type.")
MLF_MODEL_FAILED = ("Encountered an unexpected error while evaluating the model. Verify that "
                    "the serialized input Dataframe is compatible with the model for "
                    "inference.")
CORS_METHODS = "DELETE, GET, HEAD, OPTIONS, PATCH, POST, PUT"


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
    """An error answer. `kind` says whose shape its body takes: "azure"
    ({"message"}), "mlflow" ({"error_code", "message"}, or text/plain for
    415), "run" (an Azure 500 from the model or run(): x-ms-run-function-failed
    True)."""

    def __init__(self, status, message, close=False, kind="azure", trace=None, headers=None,
                 code="BAD_REQUEST"):
        super().__init__(message)
        self.status = status
        self.message = message
        self.close = close
        self.kind = kind
        self.trace = trace        # MLflow's "stack_trace"
        self.headers = headers or []
        self.code = code          # MLflow's "error_code"


def az_error(status, message, **kw):
    """An answer of the Azure routes: {"message": ...}."""
    return HttpError(status, message, **kw)


def run_failed(what, e):
    """The model or run() raised: the Azure peer's 500, with the reason after
    its sentence (the traceback goes to the log)."""
    log("%s failed:\n%s" % (what, traceback.format_exc().rstrip()))
    reason = str(e) if isinstance(e, BadRows) else "%s: %s" % (type(e).__name__, e)
    return HttpError(500, "%s (%s)" % (AZ_RUN_FAILED, reason), kind="run")


def mlf_error(message, status=400, trace=None, code="BAD_REQUEST"):
    """MLflow's MlflowException answer: 400 BAD_REQUEST (or another of its
    error codes), {"error_code", "message"} and the traceback as
    "stack_trace" where there is one."""
    return HttpError(status, message, kind="mlflow", trace=trace, code=code)


class Request:
    __slots__ = ("method", "target", "path", "query", "version", "headers", "body",
                 "keep_alive")


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


_encode = json.JSONEncoder(allow_nan=False, separators=(",", ":")).encode


def dumps(v):
    if hasattr(v, "tolist"):  # a model's numpy answer, without the detour below
        v = v.tolist()
    try:
        return _encode(v).encode()
    except (TypeError, ValueError):
        return _encode(_plain(v)).encode()


def new_guid():
    """A random (version 4) UUID as text, as str(uuid.uuid4()) but cheaper."""
    b = bytearray(os.urandom(16))
    b[6] = (b[6] & 0x0F) | 0x40
    b[8] = (b[8] & 0x3F) | 0x80
    h = b.hex()
    return "%s-%s-%s-%s-%s" % (h[:8], h[8:12], h[12:16], h[16:20], h[20:])


def is_json_type(ctype):
    """Flask's request.is_json: application/json or application/*+json."""
    base = ctype.split(";", 1)[0].strip().lower()
    return base == "application/json" or (base.startswith("application/")
                                          and base.endswith("+json"))


def _json_or_text(v):
    try:
        return json.loads(v)
    except ValueError:
        return v


def query_params(query):
    """The Azure peer's reading of /score?...: each value as JSON where it
    parses, else as text; a name given more than once, a list of its values."""
    seen = {}
    for k, v in urllib.parse.parse_qsl(query, keep_blank_values=True):
        seen.setdefault(k, []).append(_json_or_text(v))
    return {k: v[0] if len(v) == 1 else v for k, v in seen.items()}


def json_object_body(req):
    """The body of an Azure POST for a run() with named parameters (the
    no-code server, a script decorated with input_schema): a JSON object."""
    if not is_json_type(req.headers.get("content-type", "")):
        raise az_error(415, AZ_NOT_JSON)
    if not req.body:
        raise az_error(400, "POST body is empty. Expecting a JSON dictionary.")
    try:
        # Text first (json.loads of bytes guesses the encoding first, which
        # costs); bytes that are not UTF-8 go through that guess as the peer's.
        try:
            body = req.body.decode("utf-8")
        except UnicodeDecodeError:
            body = req.body
        doc = json.loads(body)
    except ValueError as e:  # UnicodeDecodeError too
        raise az_error(400, "POST body could not be decoded as JSON: %s" % e)
    if not isinstance(doc, dict):
        raise az_error(400, "POST body should be a JSON dictionary.")
    return doc


def named_params(req):
    """The parameters of a named-parameter run(): the JSON body of a POST,
    the query of a GET."""
    if req.method in ("GET", "HEAD"):
        return query_params(req.query)
    return json_object_body(req)


# -- inputs ---------------------------------------------------------------------------

_SCALAR = (int, float, str, bool, type(None))


class BadRows(ValueError):
    """Input of the wrong shape: a 500 from run() on /score (where the Azure
    peer's no-code script finds it), a 400 on /invocations."""


def check_rows(rows, what):
    """A non-empty list of rows, each a list of scalars, all of one length."""
    if not isinstance(rows, list) or not rows:
        raise BadRows("%s must be a non-empty list of rows (lists of feature values)"
                        % what)
    width = None
    for i, row in enumerate(rows):
        if not isinstance(row, list):
            raise BadRows("%s[%d] must be a row: a list of feature values, not %s"
                            % (what, i, type(row).__name__))
        for x in row:
            if not isinstance(x, _SCALAR):
                raise BadRows("%s[%d] holds a %s; a row holds numbers or strings"
                                % (what, i, type(x).__name__))
        if width is None:
            width = len(row)
        elif len(row) != width:
            raise BadRows("%s[%d] has %d values; the first row has %d"
                            % (what, i, len(row), width))
    return rows


def rows_from_records(records, what, feature_names):
    if not isinstance(records, list) or not records:
        raise BadRows("%s must be a non-empty list" % what)
    for i, r in enumerate(records):
        if not isinstance(r, dict):
            raise BadRows("%s[%d] must be an object {column: value}" % (what, i))
    columns = list(feature_names) if feature_names is not None else list(records[0])
    rows = []
    for i, r in enumerate(records):
        missing = [c for c in columns if c not in r]
        if missing:
            raise BadRows("%s[%d] has no column %r" % (what, i, missing[0]))
        rows.append([r[c] for c in columns])
    return check_rows(rows, what)


def rows_from_columns(cols, what, feature_names):
    if not isinstance(cols, dict) or not cols:
        raise BadRows("%s must be a non-empty object {column: [values]}" % what)
    columns = list(feature_names) if feature_names is not None else list(cols)
    for c in columns:
        if c not in cols:
            raise BadRows("%s has no column %r" % (what, c))
        if not isinstance(cols[c], list):
            raise BadRows("%s[%r] must be a list of values" % (what, c))
    n = {len(cols[c]) for c in columns}
    if len(n) != 1:
        raise BadRows("the columns of %s have different lengths" % what)
    return check_rows([list(r) for r in zip(*(cols[c] for c in columns))], what)


def mlflow_rows(doc, feature_names):
    """Rows from MLflow's request shapes."""
    if not isinstance(doc, dict):
        raise BadRows("expected an object with one of instances, inputs, "
                        "dataframe_split or dataframe_records")
    keys = [k for k in ("instances", "inputs", "dataframe_split", "dataframe_records")
            if k in doc]
    if len(keys) != 1:
        raise BadRows("expected exactly one of instances, inputs, dataframe_split or "
                        "dataframe_records, got %s" % (", ".join(keys) or "none"))
    key, value = keys[0], doc[keys[0]]
    if key == "dataframe_split":
        if not isinstance(value, dict) or "data" not in value:
            raise BadRows("dataframe_split must be {\"columns\": [...], \"data\": "
                            "[[...], ...]}")
        data = check_rows(value["data"], "dataframe_split.data")
        columns = value.get("columns")
        if columns is not None and feature_names is not None:
            if not isinstance(columns, list) or len(columns) != len(data[0]):
                raise BadRows("dataframe_split.columns must name every value of a row")
            index = {c: i for i, c in enumerate(columns)}
            missing = [c for c in feature_names if c not in index]
            if missing:
                raise BadRows("dataframe_split has no column %r" % missing[0])
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




# -- MLflow's request formats -------------------------------------------------------------


def mlflow_content_type(req):
    """The body's kind, "json" or "csv", checked as the MLflow peer checks a
    Content-Type: charset UTF-8 only, no other parameter, then the type;
    every refusal a 415 in text/plain."""
    ctype = req.headers.get("content-type")
    if ctype is None:
        raise HttpError(415, "This predictor only supports the following content types: "
                        "Types: ['text/csv', 'application/json']. Got 'None'.", kind="mlflow")
    parts = [p.strip() for p in ctype.split(";")]
    params = {}
    for pair in parts[1:]:
        key, _, value = pair.partition("=")
        params[key] = value
    if params.get("charset", "utf-8").lower() != "utf-8":
        raise HttpError(415, "The scoring server only supports UTF-8", kind="mlflow")
    unknown = sorted(set(params) - {"charset"})
    if unknown:
        raise HttpError(415, "Unrecognized content type parameters: %s. %s"
                        % (", ".join(unknown), MLF_PROTOCOL), kind="mlflow")
    if parts[0] == "application/json":
        return "json"
    if parts[0] == "text/csv":
        return "csv"
    raise HttpError(415, "This predictor only supports the following content types: "
                    "Types: ['text/csv', 'application/json']. Got '%s'." % ctype,
                    kind="mlflow")


def mlflow_text(req):
    try:
        return req.body.decode("utf-8")
    except UnicodeDecodeError as e:
        raise mlf_error("Invalid input. The body is not UTF-8: %s" % e)


def mlflow_json(text):
    """The request object: one of MLflow's four formats, and its params."""
    try:
        doc = json.loads(text)
    except ValueError as e:
        raise mlf_error("Invalid input. Ensure that input is a valid JSON formatted string. "
                        "Error: '%s'" % e)
    if isinstance(doc, list):
        raise mlf_error("Invalid input. %s. Received a list." % MLF_REQUIRED)
    if not isinstance(doc, dict):
        raise mlf_error("Invalid input. %s. Received unexpected input type '%s'."
                        % (MLF_REQUIRED, type(doc).__name__))
    keys = [k for k in MLF_FORMATS if k in doc]
    if len(keys) != 1:
        raise mlf_error("%s. Received dictionary with input fields: %s. %s"
                        % (MLF_REQUIRED, list(doc), MLF_PROTOCOL))
    params = doc.get("params")
    if params is not None and not isinstance(params, dict):
        # MLflow's pyfunc refuses them with INVALID_PARAMETER_VALUE, also a 400.
        raise mlf_error("Parameters must be a dictionary. Got type '%s'."
                        % type(params).__name__, code="INVALID_PARAMETER_VALUE")
    return {keys[0]: doc[keys[0]]}, params


def _number(cell):
    try:
        return int(cell)
    except ValueError:
        pass
    try:
        return float(cell)
    except ValueError:
        return None


def csv_rows(text, feature_names):
    """Rows from a CSV body, and its columns when it has a header row.

    MLflow reads every CSV with pandas.read_csv, whose first row is always
    the header. A client that sends rows without one would lose its first
    row there, so a first row is taken as the header only when one of its
    cells is not a number (or it names the model's features); numbers become
    int or float, empty cells None."""
    try:
        table = [r for r in csv.reader(io.StringIO(text)) if r]
    except csv.Error as e:
        raise mlf_error("Failed to parse input as a Pandas DataFrame. Ensure that the input "
                        "is a valid CSV-formatted Pandas DataFrame produced using the "
                        "`pandas.DataFrame.to_csv()` method. Error: '%s'" % e)
    if not table:
        raise mlf_error("Failed to parse input as a Pandas DataFrame. Ensure that the input "
                        "is a valid CSV-formatted Pandas DataFrame produced using the "
                        "`pandas.DataFrame.to_csv()` method. Error: 'No columns to parse "
                        "from file'")
    first = table[0]
    header = (feature_names is not None and [c.strip() for c in first] == feature_names) or \
        any(_number(c) is None for c in first)
    columns = [c.strip() for c in first] if header else None
    rows = []
    for r in table[1:] if header else table:
        row = []
        for c in r:
            n = _number(c)
            row.append(n if n is not None else (None if c == "" else c))
        rows.append(row)
    if not rows:
        raise mlf_error("Failed to parse input as a Pandas DataFrame: the CSV has a header "
                        "and no rows")
    if columns is not None and feature_names is not None:
        index = {c: i for i, c in enumerate(columns)}
        missing = [c for c in feature_names if c not in index]
        if missing:
            raise mlf_error("Invalid input. The CSV has no column %r" % missing[0])
        try:
            rows = [[row[index[c]] for c in feature_names] for row in rows]
        except IndexError:
            raise mlf_error("Invalid input. A CSV row is shorter than its header")
    try:
        return check_rows(rows, "the CSV"), columns
    except BadRows as e:
        raise mlf_error("Invalid input. %s" % e)


def mlflow_rows_of(req, feature_names):
    """The rows of an /invocations request (any MLflow format), and its params."""
    kind = mlflow_content_type(req)
    text = mlflow_text(req)
    if kind == "csv":
        return csv_rows(text, feature_names)[0], None
    doc, params = mlflow_json(text)
    try:
        return mlflow_rows(doc, feature_names), params
    except BadRows as e:
        raise mlf_error("Invalid input. %s" % e)


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


class Result:
    """A successful answer: the body, its type, and how long the model (or
    run()) took, for x-ms-run-fn-exec-ms."""
    __slots__ = ("status", "ctype", "body", "exec_ms", "headers")

    def __init__(self, body, ctype="application/json", exec_ms=None, status=200, headers=()):
        self.status = status
        self.ctype = ctype
        self.body = body
        self.exec_ms = exec_ms
        self.headers = headers


class SklearnApp:
    """The no-code server: a scikit-learn model, no user code. On /score it
    is the Azure peer's no-code scoring script: run(data, method) with named
    parameters, so the body must be a JSON object (415, 400 otherwise), and
    whatever goes wrong after that, rows of the wrong shape included, is
    run()'s failure (500)."""

    kind = "sklearn"

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
        classes = getattr(self.model, "classes_", None)
        self.classes = _plain(classes) if classes is not None else None
        self.default_method = "predict_proba" if hasattr(self.model, "predict_proba") \
            else "predict"
        self.predict = self.model.predict
        try:
            import sklearn
            version = " (scikit-learn %s)" % sklearn.__version__
        except ImportError:
            version = ""
        log("loaded model %s: %s from %s%s" % (model_ref, type(self.model).__name__,
                                                os.path.basename(path), version))

    def _matrix(self, rows):
        if self.n_features is not None and len(rows[0]) != self.n_features:
            raise BadRows("each row must have %d feature values, not %d"
                          % (self.n_features, len(rows[0])))
        return self.np.asarray(rows)

    def _run(self, data, method):
        """The no-code run(): rows in, the method's answer out."""
        if method is None:
            method = self.default_method
        elif method not in ("predict", "predict_proba"):
            raise BadRows("method must be \"predict\" or \"predict_proba\", not %s"
                          % json.dumps(method))
        elif not hasattr(self.model, method):
            raise BadRows("the model (%s) has no %s; ask for \"method\": \"predict\""
                          % (type(self.model).__name__, method))
        X = self._matrix(check_rows(data, "data"))
        return getattr(self.model, method)(X)

    def score(self, req):
        params = named_params(req)
        if "data" not in params:
            raise az_error(400, "A value is not provided for the 'data' parameter.")
        t0 = time.perf_counter()
        try:
            out = self._run(params["data"], params.get("method"))
        except Exception as e:
            raise run_failed("run()", e)
        ms = (time.perf_counter() - t0) * 1000
        return Result(dumps(out), exec_ms=ms)

    def invocations(self, req):
        rows, _params = mlflow_rows_of(req, self.feature_names)
        try:
            out = self.predict(self._matrix(rows))
        except Exception:
            trace = traceback.format_exc()
            log("the model's predict failed:\n%s" % trace.rstrip())
            raise mlf_error(MLF_MODEL_FAILED, trace=trace)
        return Result(dumps({"predictions": out}))

    def schemas(self):
        """ServiceInput and ServiceOutput of the swagger: the rows the model
        takes (n_features_in_ numbers each) and what the default method
        answers (classes_)."""
        row = {"type": "array", "items": {"type": "number", "format": "double"}}
        if self.n_features is not None:
            row["minItems"] = row["maxItems"] = self.n_features
        methods = [m for m in ("predict", "predict_proba") if hasattr(self.model, m)]
        inp = {"type": "object",
               "properties": {"data": {"type": "array", "items": row},
                              "method": {"type": "string", "enum": methods}},
               "required": ["data"],
               "example": {"data": [[0.0] * (self.n_features or 1)]}}
        label = {"type": "number"}
        if self.classes is not None:
            kinds = {type(c) for c in self.classes}
            label = {"type": "integer" if kinds <= {int} else
                     "number" if kinds <= {int, float} else "string",
                     "enum": self.classes}
        if self.default_method == "predict_proba":
            item = {"type": "array", "items": {"type": "number", "format": "double"}}
            if self.classes is not None:
                item["minItems"] = item["maxItems"] = len(self.classes)
                item["description"] = "the probability of each class of %s" % \
                    json.dumps(self.classes)
        else:
            item = label
        out = {"type": "array", "items": item}
        return inp, out


class ScriptApp:
    """An entry script's init() once, then run(raw_data) per request, as the
    Azure peer calls an undecorated run(): the body as text whatever its
    Content-Type (400 when it is not UTF-8), a GET's query as JSON; a
    request_headers parameter gets the request's headers."""

    kind = "script"

    def __init__(self, model_ref, script, source_dir):
        sys.path.insert(0, source_dir)
        self.source_dir = source_dir
        path = os.path.join(source_dir, script)
        name = os.path.splitext(os.path.basename(script))[0] or "score"
        spec = importlib.util.spec_from_file_location(name, path)
        module = importlib.util.module_from_spec(spec)
        sys.modules[name] = module
        spec.loader.exec_module(module)
        if not callable(getattr(module, "run", None)):
            raise RuntimeError("the entry script %s has no run(raw_data) function" % script)
        try:
            params = list(inspect.signature(module.run).parameters.values())
        except (TypeError, ValueError):
            params = []
        self.with_headers = any(p.name == "request_headers" for p in params)
        self.params = [p for p in params if p.name != "request_headers"]
        # A run() decorated with inference-schema's @input_schema takes named
        # parameters from a JSON object, as the peer passes them; its schemas
        # describe the service in /swagger.json.
        self.schema_util = None
        if "inference_schema" in sys.modules:
            try:
                from inference_schema import schema_util
                if schema_util.is_schema_decorated(module.run):
                    self.schema_util = schema_util
            except Exception:
                self.schema_util = None
        # @rawhttp (azureml.contrib.services): run() gets the request itself,
        # for every method, and may answer with an AMLResponse.
        aml = sys.modules.get("azureml.contrib.services.aml_request")
        self.raw = bool(aml is not None and getattr(aml, "_rawHttpRequested", False))
        self.request_type = aml.AMLRequest if self.raw else None
        if self.raw and self.schema_util:
            raise RuntimeError("run() cannot be decorated with both @rawhttp and @input_schema")
        if callable(getattr(module, "init", None)):
            module.init()
        self.run = module.run
        log("entry script %s ready (model %s%s)" % (
            script, model_ref, ", run() takes %s" % ", ".join(p.name for p in self.params)
            if self.schema_util else ""))

    def _named(self, req):
        """The keyword arguments of a decorated run(): each parameter from the
        request's object, else its default, else a 400."""
        body = named_params(req)
        kwargs = {}
        for p in self.params:
            if p.name in body:
                kwargs[p.name] = body[p.name]
            elif p.default is not inspect.Parameter.empty:
                kwargs[p.name] = p.default
            else:
                raise az_error(400, "A value is not provided for the %r parameter." % p.name)
        return kwargs

    def _call(self, arg, req):
        """run() with the raw text, or (decorated) with its keyword arguments."""
        extra = {}
        if self.with_headers:
            # Named as the peer's Flask names them (werkzeug title-cases
            # the WSGI names: "Content-Type", "X-Request-Id", "Traceid").
            extra["request_headers"] = {k.title(): v for k, v in req.headers.items()}
        if self.schema_util:
            return self.run(**arg, **extra)
        return self.run(arg, **extra)

    def _answer(self, result, ms):
        if type(result).__name__ == "AMLResponse" and hasattr(result, "status_code"):
            return Result(result.data, result.content_type, ms, status=result.status_code,
                          headers=result.headers)
        if isinstance(result, (bytes, bytearray)):
            return Result(bytes(result), "application/octet-stream", ms)
        return Result(dumps(result), exec_ms=ms)

    def score(self, req):
        if self.raw:
            text = self.request_type(req.method, req.target, req.headers, req.body)
        elif self.schema_util:
            text = self._named(req)
        elif req.method in ("GET", "HEAD"):
            text = json.dumps(query_params(req.query))
        else:
            try:
                text = req.body.decode("utf-8")
            except UnicodeDecodeError as e:
                raise az_error(400, "Input cannot be decoded as UTF-8: %s" % e)
        t0 = time.perf_counter()
        try:
            out = self._call(text, req)
        except Exception as e:
            raise run_failed("run()", e)
        return self._answer(out, (time.perf_counter() - t0) * 1000)

    def invocations(self, req):
        rows, _params = mlflow_rows_of(req, None)
        if self.schema_util:  # the rows as the first parameter
            arg = {p.name: p.default for p in self.params[1:]
                   if p.default is not inspect.Parameter.empty}
            arg[self.params[0].name] = rows
        elif self.raw:
            arg = self.request_type("POST", "/invocations", {
                "content-type": "application/json"}, json.dumps({"data": rows}).encode())
        else:
            arg = json.dumps({"data": rows})
        try:
            out = self._call(arg, req)
            if type(out).__name__ == "AMLResponse" and hasattr(out, "status_code"):
                if out.status_code >= 400:
                    raise RuntimeError("run() answered %d: %s" % (out.status_code,
                                                                  out.get_data(True)[:200]))
                try:
                    out = json.loads(out.data)
                except ValueError:
                    out = out.get_data(True)
        except Exception:
            trace = traceback.format_exc()
            log("run() failed:\n%s" % trace.rstrip())
            raise mlf_error(MLF_MODEL_FAILED, trace=trace)
        if isinstance(out, (bytes, bytearray)):
            return Result(bytes(out), "application/octet-stream")
        return Result(dumps({"predictions": out}))

    def schemas(self):
        """The decoration's schemas; an undecorated run(): the Azure peer's
        empty objects."""
        empty = {"type": "object", "example": {}}
        if not self.schema_util:
            return empty, empty
        return (self.schema_util.get_input_schema(self.run) or empty,
                self.schema_util.get_output_schema(self.run) or empty)


# -- swagger ------------------------------------------------------------------------------

SWAGGER_VERSIONS = {"2": "2", "2.0": "2", "3": "3", "3.0": "3", "3.1": "3.1"}


def _responses(v2, ok_description, ok_schema, ok_type="application/json"):
    err = {"$ref": "#/definitions/ErrorResponse" if v2 else "#/components/schemas/ErrorResponse"}
    failed = "The service failed to execute due to an error."
    if v2:
        return {"200": {"description": ok_description, "schema": ok_schema},
                "default": {"description": failed, "schema": err}}
    return {"200": {"description": ok_description, "content": {ok_type: {"schema": ok_schema}}},
            "default": {"description": failed,
                        "content": {"application/json": {"schema": err}}}}


def swagger_spec(version, title, service_version, inp, out):
    """The OpenAPI document the Azure peer serves, for version "2", "3" or
    "3.1": the health route, /score with the service's input and output
    schemas, and /swagger.json itself."""
    v2 = version == "2"
    ref = "#/definitions/" if v2 else "#/components/schemas/"
    error = {"type": "object", "properties": {"message": {"type": "string"}}}
    info = {"title": title, "description": "API specification for the Azure Machine Learning "
            "service %s" % title, "version": service_version}
    health = {"operationId": "ServiceHealthCheck",
              "description": "Simple health check endpoint to ensure the service is up at any "
                             "given point.",
              "responses": _responses(v2, "If service is up and running, this response will "
                                          "be returned with the content 'Healthy'",
                                      {"type": "string", "example": "Healthy"}, "text/plain")}
    score = {"operationId": "RunMLService",
             "description": "Run web service's model and get the prediction output",
             "security": [{"Bearer": []}],
             "responses": _responses(v2, "The service processed the input correctly and "
                                         "provided a result prediction, if applicable.",
                                     {"$ref": ref + "ServiceOutput"})}
    payload = "The input payload for executing the real-time machine learning service."
    version_param = {"name": "version", "in": "query", "required": False}
    enum = {"type": "integer", "enum": [2, 3]}
    if v2:
        score["parameters"] = [{"name": "serviceInputPayload", "in": "body",
                                "description": payload,
                                "schema": {"$ref": ref + "ServiceInput"}}]
        version_param.update(enum)
    else:
        score["requestBody"] = {"description": payload, "content": {
            "application/json": {"schema": {"$ref": ref + "ServiceInput"}}}}
        version_param["schema"] = enum
    spec_route = {"operationId": "GetSwaggerSpec", "description": "Get the Swagger specification.",
                  "parameters": [version_param],
                  "responses": _responses(v2, "The Swagger specification.", {"type": "string"},
                                          "text/plain")}
    paths = {"/": {"get": health}, "/score": {"post": score},
             "/swagger.json": {"get": spec_route}}
    schemas = {"ServiceInput": inp, "ServiceOutput": out, "ErrorResponse": error}
    bearer = {"type": "apiKey", "name": "Authorization", "in": "header",
              "description": "For example: Bearer abc123"}
    if v2:
        return {"swagger": "2.0", "info": info, "schemes": ["https"],
                "consumes": ["application/json"], "produces": ["application/json"],
                "securityDefinitions": {"Bearer": bearer}, "paths": paths,
                "definitions": schemas}
    return {"openapi": "3.1.0" if version == "3.1" else "3.0.3", "info": info,
            "security": [{"Bearer": []}], "paths": paths,
            "components": {"schemas": schemas, "securitySchemes": {"Bearer": bearer}}}


class Swagger:
    """GET /swagger.json[?version=N]: the document, made once per version. An
    entry script's folder may hold its own (swagger.json or swagger2.json for
    version 2, swagger3.json, swagger3.1.json), which is served as it is."""

    def __init__(self, app, service, model_ref):
        self.app = app
        self.title = service
        self.version = model_ref.rpartition(":")[2] or "1"
        self.done = {}
        self.lock = threading.Lock()

    def _user_file(self, v):
        folder = getattr(self.app, "source_dir", None)
        if not folder:
            return None
        names = ["swagger.json", "swagger2.json"] if v == "2" else ["swagger%s.json" % v]
        for n in names:
            try:
                with open(os.path.join(folder, n), "rb") as f:
                    data = f.read()
                json.loads(data)
                return data
            except (OSError, ValueError):
                continue
        return None

    def get(self, query):
        asked = urllib.parse.parse_qs(query).get("version", ["2"])[0]
        v = SWAGGER_VERSIONS.get(asked)
        if v is None:
            raise az_error(404, "Swagger version [%s] is not valid. Supported versions: "
                           "[2, 3, 3.1]." % asked)
        with self.lock:
            if v not in self.done:
                data = self._user_file(v)
                if data is None:
                    inp, out = self.app.schemas()
                    data = dumps(swagger_spec(v, self.title, self.version, inp, out))
                self.done[v] = data
            return self.done[v]


# -- HTTP -------------------------------------------------------------------------------


class Server:
    def __init__(self, app, public, check, swagger=None, cors=None):
        self.app = app
        self.swagger = swagger
        # AML_CORS_ORIGINS, as the Azure peer reads it: None (no CORS headers),
        # or the origins allowed ("*" for any).
        self.cors = cors
        # HTTP_X_MS_SERVER_VERSION: sent back as x-ms-server-version, as there.
        version = os.environ.get("HTTP_X_MS_SERVER_VERSION", "")
        self.server_version = [("x-ms-server-version", version)] if version else []
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
                               dumps({"message": e.message}),
                               [("x-ms-run-function-failed", "False")], False)
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
            if end >= 0 and end <= MAX_HEADER:
                break
            if end > MAX_HEADER or len(buf) > MAX_HEADER:  # all at once, or still coming
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
        req.path, _, req.query = req.target.partition("?")
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

    # routes

    def _route(self, req):
        """(status, content type, body, headers) for a request."""
        path = req.path
        if path in ("/invocations", "/ping", "/health", "/version"):
            return self._mlflow(req)
        return self._azure(req)

    def _mlflow(self, req):
        path, method = req.path, req.method
        try:
            if path == "/invocations":
                if method != "POST":
                    raise HttpError(405, AZ_NOT_ALLOWED, headers=[("Allow", "OPTIONS, POST")])
                r = self.app.invocations(req)
                return r.status, r.ctype, r.body, []
            if method not in ("GET", "HEAD"):
                raise HttpError(405, AZ_NOT_ALLOWED, headers=[("Allow", "GET, HEAD, OPTIONS")])
            if path == "/version":
                return 200, "application/json", MLFLOW_VERSION.encode(), []
            return 200, "application/json", b"\n", []
        except HttpError as e:
            self._log_error(req, e)
            if e.kind == "mlflow" and e.status == 415:
                return 415, "text/plain; charset=utf-8", e.message.encode(), []
            if e.kind == "mlflow":
                doc = {"error_code": e.code, "message": e.message}
                if e.trace:
                    doc["stack_trace"] = e.trace
                return e.status, "application/json", dumps(doc), []
            return e.status, "application/json", dumps({"message": e.message}), e.headers

    def _ids(self, req):
        """The Azure peer's request ids: x-request-id (the client's, else a
        fresh GUID), x-ms-request-id (the client's, else its client request
        id, else x-request-id) and x-ms-client-request-id (the client's, else
        its x-ms-request-id), each at most 100 characters (431)."""
        h = req.headers
        rid = h.get("x-request-id")
        if rid is None:
            rid = new_guid()
        if len(rid) > ID_LIMIT:
            raise HttpError(431, "x-request-id must not exceed %d characters" % ID_LIMIT)
        legacy = h.get("x-ms-request-id", "")
        client = h.get("x-ms-client-request-id", "")
        if legacy:
            client = client or legacy
        else:
            legacy = client or rid
        ids = self.server_version + [("x-request-id", rid)]
        if len(legacy) > ID_LIMIT or len(client) > ID_LIMIT:
            raise HttpError(431, "x-ms-request-id and x-ms-client-request-id must not exceed "
                            "%d characters" % ID_LIMIT, headers=ids)
        if legacy:
            ids.append(("x-ms-request-id", legacy))
        if client:
            ids.append(("x-ms-client-request-id", client))
        trace = h.get("traceid")
        if trace is not None:
            ids.append(("TraceId", trace))
        return ids

    def _azure(self, req):
        path, method = req.path, req.method
        failed = "False"
        ids = []
        try:
            if path == "/score":
                if method not in ("GET", "HEAD", "POST", "OPTIONS"):
                    raise HttpError(405, AZ_NOT_ALLOWED,
                                    headers=[("Allow", "GET, HEAD, OPTIONS, POST")])
                ids = self._ids(req)
                if method == "OPTIONS" and not getattr(self.app, "raw", False):
                    return 200, "text/html; charset=utf-8", b"", \
                        ids + [("x-ms-run-function-failed", failed)]
                r = self.app.score(req)
                own = list(r.headers) or [("x-ms-run-function-failed", failed)]
                if r.status >= 500:  # an AMLResponse of run()'s that says it failed
                    own = [h for h in own if h[0].lower() != "x-ms-run-function-failed"] + [
                        ("x-ms-run-function-failed", "True")]
                return r.status, r.ctype, r.body, ids + own + [
                    ("x-ms-run-fn-exec-ms", "%.3f" % r.exec_ms)]
            if path == "/":
                if method == "OPTIONS":
                    return 200, "text/html; charset=utf-8", b"", [("Allow",
                                                                   "GET, HEAD, OPTIONS")]
                if method not in ("GET", "HEAD"):
                    raise HttpError(405, AZ_NOT_ALLOWED, headers=[("Allow", "GET, HEAD, OPTIONS")])
                ids = self._ids(req)
                return 200, "text/html; charset=utf-8", b"Healthy", ids
            if path == "/swagger.json":
                if method not in ("GET", "HEAD"):
                    raise HttpError(405, AZ_NOT_ALLOWED, headers=[("Allow", "GET, HEAD, OPTIONS")])
                ids = self._ids(req)
                return 200, "application/json", self.swagger.get(req.query), \
                    ids + [("x-ms-run-function-failed", failed)]
            raise HttpError(404, AZ_NOT_FOUND)
        except HttpError as e:
            self._log_error(req, e)
            if e.kind == "run":
                failed = "True"
            return e.status, "application/json", dumps({"message": e.message}), \
                ids + e.headers + [("x-ms-run-function-failed", failed)]

    def _log_error(self, req, e):
        log("%s %s %d: %s" % (req.method, req.path, e.status, e.message))

    def _cors(self, req):
        """flask-cors as the Azure peer sets it up from AML_CORS_ORIGINS: an
        allowed Origin is echoed (with Vary: Origin), and a preflight gets the
        methods and the headers it asked for."""
        origin = req.headers.get("origin")
        if self.cors is None or origin is None:
            return []
        if "*" not in self.cors and origin not in self.cors:
            return []
        out = [("Access-Control-Allow-Origin", origin), ("Vary", "Origin")]
        if req.method == "OPTIONS" and "access-control-request-method" in req.headers:
            out.append(("Access-Control-Allow-Methods", CORS_METHODS))
            asked = req.headers.get("access-control-request-headers")
            if asked:
                out.append(("Access-Control-Allow-Headers",
                            ", ".join(sorted(h.strip() for h in asked.split(",")
                                             if h.strip()))))
        return out

    def _handle(self, conn, req):
        try:
            status, ctype, body, headers = self._route(req)
        except HttpError as e:
            status, ctype, body, headers = e.status, "application/json", \
                dumps({"message": e.message}), [("x-ms-run-function-failed", "False")]
        except Exception as e:  # a bug of ours: say so, keep serving
            status, ctype = 500, "application/json"
            body = dumps({"message": "An unexpected internal error occurred: %s: %s"
                          % (type(e).__name__, e)})
            headers = [("x-ms-run-function-failed", "False")]
            log("%s %s failed:\n%s" % (req.method, req.path, traceback.format_exc().rstrip()))
        if self.cors is not None:
            headers = headers + self._cors(req)
        keep = req.keep_alive and not self.stopping
        self._send(conn, req, status, ctype, body, headers, keep)
        return keep

    def _send(self, conn, req, status, ctype, body, headers, keep):
        head = "HTTP/1.1 %d %s\r\nContent-Type: %s\r\nContent-Length: %d\r\n" \
               "Connection: %s\r\nServer: runyard\r\n%s\r\n" % (
                   status, REASONS.get(status, "Error"), ctype, len(body),
                   "keep-alive" if keep else "close",
                   "".join(["%s: %s\r\n" % h for h in headers]))
        data = head.encode("latin-1", "replace")
        if req is None or req.method != "HEAD":
            data += body
        conn.sendall(data)


def cors_origins(value):
    if value is None or not value.strip():
        return None
    return {o.strip() for o in value.split(",") if o.strip()}


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
    # inference-schema for entry scripts that import it, when the interpreter
    # has none: last on the path, so an installed one wins.
    sys.path.append(os.path.join(os.path.dirname(os.path.abspath(__file__)), "_compat"))
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
    server = Server(app, public, check, Swagger(app, args.service, args.model),
                    cors_origins(os.environ.get("AML_CORS_ORIGINS")))
    server.want_public = stop["public"]
    server.want_stop = stop["stop"]
    server.loop(wake_r)
    return 0


if __name__ == "__main__":
    sys.exit(main())
