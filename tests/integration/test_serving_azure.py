"""/score as Azure ML's inference server (azureml-inference-server-http 1.x)
answers it: one test per group of rows of the conformance table in
docs/models.md ("Azure ML's inference server"), each against a service
deployed through the real daemon and CLI, no-code and with entry scripts."""

import http.client
import json
import re
import uuid

import pytest

from conftest import script
from test_models import ROWS, deploy, direct, register_file
from test_models import iris_model  # noqa: F401 (a fixture)

GUID = re.compile(r"^[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$")
JSON = {"Content-Type": "application/json"}
RUN_FAILED = "An unexpected error occurred in scoring script. Check the logs for more info."


def call(port, method, path, body=None, headers=None):
    """(status, headers with lower-case names, body bytes)."""
    if body is not None and not isinstance(body, (bytes, str)):
        body = json.dumps(body)
    c = http.client.HTTPConnection("127.0.0.1", port, timeout=60)
    try:
        c.request(method, path, body, headers or {})
        r = c.getresponse()
        return r.status, {k.lower(): v for k, v in r.getheaders()}, r.read()
    finally:
        c.close()


def message(body):
    doc = json.loads(body)
    assert list(doc) == ["message"], doc
    return doc["message"]


@pytest.fixture
def nocode(daemon, iris_model):  # noqa: F811
    register_file(daemon, "sklearn-iris", iris_model)
    return deploy(daemon, "sklearn-iris", "iris-svc")["port"]


def test_health_probe(nocode):
    status, h, body = call(nocode, "GET", "/")
    assert (status, body) == (200, b"Healthy")
    assert h["content-type"] == "text/html; charset=utf-8"
    assert GUID.match(h["x-request-id"]) and h["x-ms-request-id"] == h["x-request-id"]
    assert "x-ms-run-function-failed" not in h


def test_post_score_and_its_headers(nocode, iris_model):  # noqa: F811
    status, h, body = call(nocode, "POST", "/score", {"data": ROWS, "method": "predict"}, JSON)
    assert status == 200 and json.loads(body) == direct(iris_model, ROWS, "predict")
    assert h["content-type"] == "application/json"
    assert re.fullmatch(r"\d+\.\d{3}", h["x-ms-run-fn-exec-ms"]), h
    assert h["x-ms-run-function-failed"] == "False"
    assert GUID.match(h["x-request-id"]) and h["x-ms-request-id"] == h["x-request-id"]
    assert "x-ms-client-request-id" not in h and "traceid" not in h
    # A fresh GUID per request; +json types are JSON too.
    _, h2, _ = call(nocode, "POST", "/score", {"data": ROWS},
                    {"Content-Type": "application/vnd.api+json; charset=utf-8"})
    assert GUID.match(h2["x-request-id"]) and h2["x-request-id"] != h["x-request-id"]


def test_get_score_with_the_query_as_json(nocode, iris_model):  # noqa: F811
    q = json.dumps(ROWS).replace(" ", "")
    status, h, body = call(nocode, "GET", "/score?data=%s&method=predict" % q)
    assert status == 200 and json.loads(body) == direct(iris_model, ROWS, "predict")
    assert h["x-ms-run-function-failed"] == "False" and "x-ms-run-fn-exec-ms" in h
    # Without data: the peer's 400 for a missing parameter.
    status, _, body = call(nocode, "GET", "/score")
    assert status == 400 and message(body) == \
        "A value is not provided for the 'data' parameter."


def test_options_score_without_and_with_cors(nocode, daemon_factory, iris_model):  # noqa: F811
    status, h, body = call(nocode, "OPTIONS", "/score", None,
                           {"Origin": "http://example.org",
                            "Access-Control-Request-Method": "POST"})
    assert (status, body) == (200, b"") and h["x-ms-run-function-failed"] == "False"
    assert not [k for k in h if k.startswith("access-control-")], h  # CORS is off by default
    # AML_CORS_ORIGINS in the server's environment turns it on, as on the peer.
    d = daemon_factory(env={"AML_CORS_ORIGINS": "http://example.org, http://other.org",
                            "HTTP_X_MS_SERVER_VERSION": "runyard-test"})
    register_file(d, "m", iris_model)
    port = deploy(d, "m", "cors")["port"]
    status, h, body = call(port, "OPTIONS", "/score", None,
                           {"Origin": "http://example.org",
                            "Access-Control-Request-Method": "POST",
                            "Access-Control-Request-Headers": "Content-Type, X-Request-Id"})
    assert (status, body) == (200, b"")
    assert h["access-control-allow-origin"] == "http://example.org" and h["vary"] == "Origin"
    assert h["access-control-allow-methods"] == "DELETE, GET, HEAD, OPTIONS, PATCH, POST, PUT"
    assert h["access-control-allow-headers"] == "Content-Type, X-Request-Id"
    assert h["x-ms-server-version"] == "runyard-test"  # HTTP_X_MS_SERVER_VERSION, as there
    status, h, _ = call(port, "POST", "/score", {"data": ROWS},
                        dict(JSON, Origin="http://other.org"))
    assert status == 200 and h["access-control-allow-origin"] == "http://other.org"
    _, h, _ = call(port, "POST", "/score", {"data": ROWS}, dict(JSON, Origin="http://evil.org"))
    assert "access-control-allow-origin" not in h


def test_415_for_a_content_type_that_is_not_json(nocode):
    for headers in [{}, {"Content-Type": "text/plain"},
                    {"Content-Type": "application/x-www-form-urlencoded"}]:
        status, h, body = call(nocode, "POST", "/score", {"data": ROWS}, headers)
        assert status == 415, headers
        assert message(body) == "Expects Content-Type to be application/json"
        assert h["x-ms-run-function-failed"] == "False" and "x-ms-run-fn-exec-ms" not in h


def test_400_for_a_body_that_is_empty_or_not_json(nocode):
    for body, words in [(b"", "POST body is empty. Expecting a JSON dictionary."),
                        (b"{nope", "POST body could not be decoded as JSON"),
                        (b"\xff\xfe\xfa", "POST body could not be decoded as JSON"),
                        (b"[1, 2]", "POST body should be a JSON dictionary."),
                        (b'{"rows": []}', "A value is not provided for the 'data' parameter.")]:
        status, h, answer = call(nocode, "POST", "/score", body, JSON)
        assert status == 400 and message(answer).startswith(words), (body, answer)
        assert h["x-ms-run-function-failed"] == "False" and GUID.match(h["x-request-id"])


def test_500_when_the_model_fails(nocode):
    for data in [[[1, 2]], [["a", "b", "c", "d"]], "nope"]:
        status, h, body = call(nocode, "POST", "/score", {"data": data}, JSON)
        assert status == 500 and message(body).startswith(RUN_FAILED), body
        assert h["x-ms-run-function-failed"] == "True" and "x-ms-run-fn-exec-ms" not in h
        assert GUID.match(h["x-request-id"])


def test_request_ids_echoed(nocode):
    hdrs = dict(JSON, **{"x-request-id": "req-1", "x-ms-client-request-id": "client-1",
                         "TraceId": "trace-1"})
    status, h, _ = call(nocode, "POST", "/score", {"data": ROWS}, hdrs)
    assert status == 200
    assert (h["x-request-id"], h["x-ms-request-id"], h["x-ms-client-request-id"],
            h["traceid"]) == ("req-1", "client-1", "client-1", "trace-1")
    # The legacy x-ms-request-id is echoed, and stands for the client id.
    _, h, _ = call(nocode, "POST", "/score", {"data": ROWS}, dict(JSON, **{
        "x-ms-request-id": "legacy-1"}))
    assert (h["x-ms-request-id"], h["x-ms-client-request-id"]) == ("legacy-1", "legacy-1")
    assert GUID.match(h["x-request-id"])
    # Errors carry the ids too.
    status, h, _ = call(nocode, "POST", "/score", b"", dict(JSON, **{"x-request-id": "r2"}))
    assert status == 400 and h["x-request-id"] == "r2"
    # 100 characters are fine, 101 are a 431.
    ok = "a" * 100
    status, h, _ = call(nocode, "POST", "/score", {"data": ROWS},
                        dict(JSON, **{"x-request-id": ok}))
    assert status == 200 and h["x-request-id"] == ok
    status, h, body = call(nocode, "POST", "/score", {"data": ROWS},
                           dict(JSON, **{"x-request-id": ok + "a"}))
    assert status == 431 and message(body) == "x-request-id must not exceed 100 characters"
    assert "x-request-id" not in h and h["x-ms-run-function-failed"] == "False"
    status, h, body = call(nocode, "POST", "/score", {"data": ROWS},
                           dict(JSON, **{"x-ms-client-request-id": ok + "a"}))
    assert status == 431 and "x-ms-client-request-id must not exceed 100" in message(body)
    # ... and the server goes on serving.
    assert call(nocode, "POST", "/score", {"data": ROWS}, JSON)[0] == 200


def test_unknown_routes_and_methods(nocode):
    status, h, body = call(nocode, "GET", "/nope")
    assert status == 404 and "was not found on the server" in message(body)
    assert h["x-ms-run-function-failed"] == "False"
    for method in ("DELETE", "PUT", "PATCH"):
        status, h, body = call(nocode, method, "/score", b"{}", JSON)
        assert status == 405 and message(body) == \
            "The method is not allowed for the requested URL.", method
        assert "POST" in h["allow"]
    assert call(nocode, "POST", "/", b"{}", JSON)[0] == 405


def test_swagger_of_a_no_code_service(nocode, iris_model):  # noqa: F811
    import joblib
    model = joblib.load(iris_model)
    status, h, body = call(nocode, "GET", "/swagger.json")
    assert status == 200 and h["content-type"] == "application/json"
    assert h["x-ms-run-function-failed"] == "False" and GUID.match(h["x-request-id"])
    v2 = json.loads(body)
    assert v2["swagger"] == "2.0" and set(v2["paths"]) == {"/", "/score", "/swagger.json"}
    assert v2["info"]["title"] == "iris-svc"
    inp = v2["definitions"]["ServiceInput"]
    row = inp["properties"]["data"]["items"]
    assert row["minItems"] == row["maxItems"] == model.n_features_in_ == 4
    assert inp["required"] == ["data"] and len(inp["example"]["data"][0]) == 4
    out = v2["definitions"]["ServiceOutput"]["items"]
    assert out["enum"] == model.classes_.tolist() and out["type"] == "integer"  # an SVC: predict
    assert v2["definitions"]["ErrorResponse"]["properties"] == {"message": {"type": "string"}}
    assert v2["paths"]["/score"]["post"]["parameters"][0]["schema"] == {
        "$ref": "#/definitions/ServiceInput"}
    for q, openapi in [("?version=3", "3.0.3"), ("?version=3.0", "3.0.3"),
                       ("?version=3.1", "3.1.0")]:
        status, _, body = call(nocode, "GET", "/swagger.json" + q)
        v3 = json.loads(body)
        assert status == 200 and v3["openapi"] == openapi
        assert v3["components"]["schemas"]["ServiceInput"] == inp
        assert v3["paths"]["/score"]["post"]["requestBody"]["content"]["application/json"][
            "schema"] == {"$ref": "#/components/schemas/ServiceInput"}
    assert json.loads(call(nocode, "GET", "/swagger.json?version=2.0")[2]) == v2
    status, _, body = call(nocode, "GET", "/swagger.json?version=4")
    assert status == 404 and message(body) == \
        "Swagger version [4] is not valid. Supported versions: [2, 3, 3.1]."


def test_swagger_of_a_predict_proba_model(daemon, tmp_path):
    path = tmp_path / "lr.joblib"
    import subprocess
    from conftest import PY
    subprocess.run([PY, "-c", script("""
        import sys, joblib
        from sklearn.datasets import load_iris
        from sklearn.linear_model import LogisticRegression
        X, y = load_iris(return_X_y=True)
        joblib.dump(LogisticRegression(max_iter=500).fit(X, y), sys.argv[1])
    """), str(path)], check=True)
    register_file(daemon, "lr", path)
    port = deploy(daemon, "lr", "lr-svc")["port"]
    v2 = json.loads(call(port, "GET", "/swagger.json")[2])
    item = v2["definitions"]["ServiceOutput"]["items"]
    assert item["type"] == "array" and item["minItems"] == item["maxItems"] == 3
    assert v2["definitions"]["ServiceInput"]["properties"]["method"]["enum"] == [
        "predict", "predict_proba"]


ECHO = script("""
    import json

    def init():
        pass

    def run(raw_data, request_headers):
        if raw_data == "boom":
            raise ValueError("boom")
        return {"raw": raw_data, "type": request_headers.get("Content-Type"),
                "trace": request_headers.get("Traceid")}
""")


@pytest.fixture
def echo(daemon, make_tree, iris_model):  # noqa: F811
    src = make_tree({"score.py": ECHO}, name="echo")
    register_file(daemon, "sklearn-iris", iris_model)
    s = daemon.cli("model", "deploy", "sklearn-iris", "--service", "echo", "--entry-script",
                   "score.py", "--source", src, json=True).json
    return s["port"]


def test_entry_script_gets_the_body_as_text(echo):
    for ctype, body in [("text/plain", "hello there"), ("application/octet-stream", "bytes"),
                        ("application/json", '{"data": [1]}'), (None, "no type"),
                        ("text/plain", "")]:
        status, h, answer = call(echo, "POST", "/score", body,
                                 {"Content-Type": ctype} if ctype else {})
        assert status == 200, (ctype, answer)
        assert json.loads(answer)["raw"] == body and json.loads(answer)["type"] == ctype
        assert h["x-ms-run-function-failed"] == "False" and "x-ms-run-fn-exec-ms" in h
    # request_headers hold what the client sent, named as Flask names them.
    _, _, answer = call(echo, "POST", "/score", "x", {"TraceId": "t-9"})
    assert json.loads(answer)["trace"] == "t-9"


def test_entry_script_get_non_utf8_and_failure(echo):
    status, _, answer = call(echo, "GET", "/score?data=[1,2]&name=x&name=y&n=null")
    assert status == 200
    assert json.loads(json.loads(answer)["raw"]) == {"data": [1, 2], "name": ["x", "y"],
                                                     "n": None}
    status, h, answer = call(echo, "POST", "/score", b"\xff\xfe", {"Content-Type": "text/plain"})
    assert status == 400 and message(answer).startswith("Input cannot be decoded as UTF-8")
    status, h, answer = call(echo, "POST", "/score", "boom", {"Content-Type": "text/plain"})
    assert status == 500 and message(answer).startswith(RUN_FAILED) and "boom" in \
        message(answer)
    assert h["x-ms-run-function-failed"] == "True"
    assert call(echo, "OPTIONS", "/score")[:1] == (200,)


def test_entry_script_swagger(echo, daemon, make_tree, iris_model):  # noqa: F811
    # An undecorated run(): the peer's empty objects.
    v2 = json.loads(call(echo, "GET", "/swagger.json")[2])
    assert v2["definitions"]["ServiceInput"] == {"type": "object", "example": {}}
    # A swagger file of the script's own is served as it is.
    mine = {"swagger": "2.0", "info": {"title": "mine", "version": str(uuid.uuid4())}}
    src = make_tree({"score.py": ECHO, "swagger.json": json.dumps(mine)}, name="own")
    s = daemon.cli("model", "deploy", "sklearn-iris", "--service", "own", "--entry-script",
                   "score.py", "--source", src, json=True).json
    assert json.loads(call(s["port"], "GET", "/swagger.json")[2]) == mine
    # ... for its version only: version 3 is made.
    assert json.loads(call(s["port"], "GET", "/swagger.json?version=3")[2])["openapi"] == \
        "3.0.3"


def test_legacy_request_id_limit_and_405_headers(nocode):
    status, h, body = call(nocode, "POST", "/score", {"data": ROWS},
                           dict(JSON, **{"x-ms-request-id": "b" * 101}))
    assert status == 431 and message(body) == ("x-ms-request-id and x-ms-client-request-id "
                                               "must not exceed 100 characters")
    assert h["x-ms-run-function-failed"] == "False"
    status, h, _ = call(nocode, "PUT", "/score", b"{}", JSON)
    assert status == 405 and h["x-ms-run-function-failed"] == "False"


def raw(port, data, timeout=30):
    """Bytes to the server, and everything it answers until it closes."""
    import socket
    s = socket.create_connection(("127.0.0.1", port), timeout=timeout)
    try:
        s.sendall(data)
        out = b""
        while True:
            chunk = s.recv(65536)
            if not chunk:
                return out
            out += chunk
    finally:
        s.close()


def test_limits_answer_with_a_message(nocode):
    """runyard's own limits (the conformance table's last paragraph)."""
    big = raw(nocode, b"POST /score HTTP/1.1\r\nContent-Type: application/json\r\n"
                      b"Content-Length: %d\r\n\r\n" % (64 * 1024 * 1024 + 1))
    assert big.startswith(b"HTTP/1.1 413 ") and b'"message"' in big
    huge = raw(nocode, b"GET / HTTP/1.1\r\nX-Big: " + b"a" * (65 * 1024) + b"\r\n\r\n")
    assert huge.startswith(b"HTTP/1.1 431 ") and b'"message"' in huge
    assert raw(nocode, b"GET / HTTP/2.0\r\n\r\n").startswith(b"HTTP/1.1 505 ")
    assert raw(nocode, b"NONSENSE\r\n\r\n").startswith(b"HTTP/1.1 400 ")
    assert call(nocode, "GET", "/")[0] == 200


DECORATED = script("""
    import numpy as np
    from inference_schema.schema_decorators import input_schema, output_schema
    from inference_schema.parameter_types.numpy_parameter_type import NumpyParameterType
    from inference_schema.parameter_types.standard_py_parameter_type import (
        StandardPythonParameterType)

    def init():
        pass

    @input_schema("data", NumpyParameterType(np.array([[5.1, 3.5, 1.4, 0.2]])))
    @input_schema("scale", StandardPythonParameterType(1.0))
    @output_schema(StandardPythonParameterType([1.0]))
    def run(data, scale=2.0):
        return (data.sum(axis=1) * scale).tolist()
""")


def test_entry_script_decorated_with_input_schema(daemon, make_tree, iris_model):  # noqa: F811
    src = make_tree({"score.py": DECORATED}, name="decorated")
    register_file(daemon, "sklearn-iris", iris_model)
    port = daemon.cli("model", "deploy", "sklearn-iris", "--service", "dec", "--entry-script",
                      "score.py", "--source", src, json=True).json["port"]
    # Named parameters from a JSON object, the default where one is missing.
    status, h, body = call(port, "POST", "/score", {"data": [[1, 2, 3, 4]], "scale": 1}, JSON)
    assert (status, json.loads(body)) == (200, [10.0])
    assert json.loads(call(port, "POST", "/score", {"data": [[1, 1, 1, 1]]}, JSON)[2]) == [8.0]
    status, _, body = call(port, "GET", "/score?data=[[1,1,1,1]]&scale=3")
    assert (status, json.loads(body)) == (200, [12.0])
    # The peer's statuses for named parameters.
    assert call(port, "POST", "/score", {"data": [[1, 1, 1, 1]]}, {})[0] == 415
    assert call(port, "POST", "/score", b"", JSON)[0] == 400
    status, _, body = call(port, "POST", "/score", {"scale": 1}, JSON)
    assert status == 400 and message(body) == \
        "A value is not provided for the 'data' parameter."
    # The sample's shape is enforced inside run(): a 500.
    status, h, body = call(port, "POST", "/score", {"data": [[1, 2]]}, JSON)
    assert status == 500 and h["x-ms-run-function-failed"] == "True"
    # The swagger shows the decoration.
    v2 = json.loads(call(port, "GET", "/swagger.json")[2])
    inp = v2["definitions"]["ServiceInput"]
    assert set(inp["properties"]) == {"data", "scale"}
    assert inp["example"]["data"] == [[5.1, 3.5, 1.4, 0.2]]
    assert inp["properties"]["data"]["items"]["items"]["format"] == "double"
    assert v2["definitions"]["ServiceOutput"]["type"] == "array"
    v3 = json.loads(call(port, "GET", "/swagger.json?version=3")[2])
    assert v3["components"]["schemas"]["ServiceInput"] == inp
    # /invocations passes the rows as the first parameter.
    status, _, body = call(port, "POST", "/invocations", {"instances": [[1, 1, 1, 1]]}, JSON)
    assert (status, json.loads(body)) == (200, {"predictions": [8.0]})


RAW = script("""
    import json
    from azureml.contrib.services.aml_request import AMLRequest, rawhttp
    from azureml.contrib.services.aml_response import AMLResponse

    def init():
        pass

    @rawhttp
    def run(request):
        if request.method == "OPTIONS":
            return AMLResponse("", 200, {"Access-Control-Allow-Origin": "*",
                                         "Access-Control-Allow-Methods": "GET, POST"})
        if request.method == "GET":
            return AMLResponse({"q": request.args.get("q"), "all": request.args.getlist("q")},
                               200, json_str=True)
        if request.headers.get("x-fail"):
            return AMLResponse("it went wrong", 503)
        doc = request.get_json()
        return {"got": doc, "type": request.content_type, "raw": request.get_data(as_text=True)}
""")


def test_entry_script_with_rawhttp_and_amlresponse(daemon, make_tree, iris_model):  # noqa: F811
    src = make_tree({"score.py": RAW}, name="raw")
    register_file(daemon, "sklearn-iris", iris_model)
    port = daemon.cli("model", "deploy", "sklearn-iris", "--service", "raw", "--entry-script",
                      "score.py", "--source", src, json=True).json["port"]
    status, h, body = call(port, "POST", "/score", {"a": 1}, JSON)
    assert status == 200 and json.loads(body) == {"got": {"a": 1}, "type": "application/json",
                                                  "raw": '{"a": 1}'}
    assert h["x-ms-run-function-failed"] == "False" and "x-ms-run-fn-exec-ms" in h
    status, h, body = call(port, "GET", "/score?q=1&q=2")
    assert (status, json.loads(body)) == (200, {"q": "1", "all": ["1", "2"]})
    # OPTIONS reaches run(), and its headers are sent, a comma-separated value as parts.
    status, h, body = call(port, "OPTIONS", "/score")
    assert (status, body) == (200, b"") and h["access-control-allow-origin"] == "*"
    assert h["content-type"] == "text/html; charset=utf-8"
    # A 5xx of run()'s own says the function failed.
    status, h, body = call(port, "POST", "/score", {"a": 1}, dict(JSON, **{"x-fail": "1"}))
    assert (status, body) == (503, b"it went wrong") and h["x-ms-run-function-failed"] == "True"
    assert GUID.match(h["x-request-id"])
