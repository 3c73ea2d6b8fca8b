"""/invocations as MLflow 2.x's scoring server answers it: one test per group
of rows of the conformance table in docs/models.md ("MLflow's scoring
server"), against services deployed through the real daemon and CLI."""

import json

import pytest

from conftest import script
from test_models import ROWS, deploy, direct, register_file
from test_models import iris_model  # noqa: F401 (a fixture)
from test_serving_azure import call

JSON = {"Content-Type": "application/json"}
COLS = ["sepal length (cm)", "sepal width (cm)", "petal length (cm)", "petal width (cm)"]


@pytest.fixture
def svc(daemon, iris_model):  # noqa: F811
    register_file(daemon, "sklearn-iris", iris_model)
    return deploy(daemon, "sklearn-iris", "iris-svc")["port"]


def predictions(port, body, headers=JSON):
    status, h, answer = call(port, "POST", "/invocations", body, headers)
    assert status == 200, answer
    assert h["content-type"] == "application/json"
    doc = json.loads(answer)
    assert list(doc) == ["predictions"], doc
    return doc["predictions"]


def bad_request(port, body, headers=JSON):
    status, h, answer = call(port, "POST", "/invocations", body, headers)
    doc = json.loads(answer)
    assert status == 400 and doc["error_code"] == "BAD_REQUEST", (status, answer)
    assert h["content-type"] == "application/json"
    assert set(doc) <= {"error_code", "message", "stack_trace"}
    return doc


def unsupported(port, body, headers):
    status, h, answer = call(port, "POST", "/invocations", body, headers)
    assert status == 415 and h["content-type"].startswith("text/plain"), (status, answer)
    return answer.decode()


def test_the_four_json_formats_and_params(svc, iris_model):  # noqa: F811
    want = direct(iris_model, ROWS, "predict")
    assert predictions(svc, {"instances": ROWS}) == want
    assert predictions(svc, {"inputs": ROWS}) == want
    assert predictions(svc, {"inputs": dict(zip(COLS, map(list, zip(*ROWS))))}) == want
    assert predictions(svc, {"dataframe_split": {"columns": COLS, "data": ROWS}}) == want
    assert predictions(svc, {"dataframe_split": {"data": ROWS}}) == want
    assert predictions(svc, {"dataframe_records": [dict(zip(COLS, r)) for r in ROWS]}) == want
    assert predictions(svc, {"instances": ROWS, "params": {"top_k": 2}}) == want
    # A charset of UTF-8, in any case, is fine; keys beside the format are ignored.
    assert predictions(svc, {"inputs": ROWS, "other": 1},
                       {"Content-Type": "application/json; charset=UTF-8"}) == want


def test_exactly_one_format(svc):
    for body in [{"instances": ROWS, "inputs": ROWS}, {"data": ROWS}, {}]:
        doc = bad_request(svc, body)
        assert "exactly one of the input fields" in doc["message"], doc
    assert "Received a list" in bad_request(svc, [ROWS])["message"]
    assert "unexpected input type" in bad_request(svc, "3")["message"]
    status, _, answer = call(svc, "POST", "/invocations", {"inputs": ROWS, "params": [1]}, JSON)
    assert status == 400 and json.loads(answer)["error_code"] == "INVALID_PARAMETER_VALUE"


def test_csv_with_and_without_a_header(svc, iris_model):  # noqa: F811
    want = direct(iris_model, ROWS, "predict")
    rows = "\n".join(",".join(str(x) for x in r) for r in ROWS) + "\n"
    assert predictions(svc, rows, {"Content-Type": "text/csv"}) == want
    header = ",".join('"%s"' % c for c in COLS) + "\n"
    assert predictions(svc, header + rows, {"Content-Type": "text/csv; charset=utf-8"}) == want
    assert predictions(svc, rows.replace("\n", "\r\n"), {"Content-Type": "text/csv"}) == want
    assert "Failed to parse input" in bad_request(svc, "", {"Content-Type": "text/csv"})[
        "message"]
    assert "header and no rows" in bad_request(svc, header, {"Content-Type": "text/csv"})[
        "message"]
    # Rows of the wrong width: the model fails, MLflow's 400.
    bad_request(svc, "1,2\n3,4\n", {"Content-Type": "text/csv"})


def test_400_for_malformed_json_an_empty_body_or_a_failing_model(svc):
    for body in [b"{nope", b"", b"\xff\xfe{}"]:
        doc = bad_request(svc, body)
        assert doc["message"].startswith("Invalid input."), doc
    doc = bad_request(svc, {"instances": [["a", "b", "c", "d"]]})
    assert doc["message"].startswith("Encountered an unexpected error while evaluating")
    assert "could not convert" in doc["stack_trace"]
    doc = bad_request(svc, {"instances": [[1, 2]]})
    assert "feature values" in doc["stack_trace"]  # the model found it, as in MLflow
    # The server goes on serving.
    assert predictions(svc, {"instances": ROWS})


def test_415_for_content_types_mlflow_refuses(svc):
    body = json.dumps({"instances": ROWS})
    for ctype in ["text/plain", "application/x-www-form-urlencoded", "application/JSON"]:
        assert "only supports the following content types" in unsupported(
            svc, body, {"Content-Type": ctype}), ctype
    assert "Got 'None'" in unsupported(svc, body, {})
    assert unsupported(svc, body, {"Content-Type": "application/json; charset=latin-1"}) == \
        "The scoring server only supports UTF-8"
    assert unsupported(svc, body, {"Content-Type": "text/csv; charset=utf-16"}) == \
        "The scoring server only supports UTF-8"
    for ctype in ["application/json; format=pandas-split",
                  "application/json; charset=utf-8; orient=records"]:
        answer = unsupported(svc, body, {"Content-Type": ctype})
        assert answer.startswith("Unrecognized content type parameters: "), answer


def test_ping_health_version(svc):
    for path in ("/ping", "/health"):
        status, h, body = call(svc, "GET", path)
        assert (status, body) == (200, b"\n") and h["content-type"] == "application/json"
        assert "x-request-id" not in h  # no Azure headers on MLflow's routes
    status, h, body = call(svc, "GET", "/version")
    assert status == 200 and h["content-type"] == "application/json"
    assert body.decode().split(".")[0] == "2"
    status, h, _ = call(svc, "GET", "/invocations")
    assert status == 405 and "POST" in h["allow"]


RUN = script("""
    import json

    def init():
        pass

    def run(raw_data):
        data = json.loads(raw_data)["data"]
        if data == [[0]]:
            raise ValueError("zero")
        return [sum(r) for r in data]
""")


def test_entry_script_on_invocations(daemon, make_tree, iris_model):  # noqa: F811
    src = make_tree({"score.py": RUN}, name="sum")
    register_file(daemon, "sklearn-iris", iris_model)
    s = daemon.cli("model", "deploy", "sklearn-iris", "--service", "sum", "--entry-script",
                   "score.py", "--source", src, json=True).json
    port = s["port"]
    assert predictions(port, {"instances": [[1, 2], [3, 4]]}) == [3, 7]
    assert predictions(port, "a,b\n1,2\n3,4\n", {"Content-Type": "text/csv"}) == [3, 7]
    doc = bad_request(port, {"instances": [[0]]})
    assert "zero" in doc["stack_trace"]
    assert unsupported(port, "{}", {"Content-Type": "text/plain"})
