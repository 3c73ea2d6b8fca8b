"""Model registry and deployed scoring services (docs/models.md).

The iris model of examples/iris is registered from a run and from a file,
deployed with no code (and with an entry script), scored and compared with
the same model loaded directly with joblib; every error status, a killed
server coming back, a version swap under continuous clients, daemon restarts,
and the azureml-style Python calls from a run and from a notebook-like script.
Everything is loopback; scoring servers run on Debian's /usr/bin/python3.
"""

import http.client
import json
import os
import pathlib
import signal
import subprocess
import sys
import threading
import time

import pytest

from conftest import DEADLINE, PY, REPO, pid_alive, script, wait_for
import ryclient

IRIS = REPO / "examples" / "iris"
SDK = REPO / "sdk" / "python"
ROWS = [[5.1, 3.5, 1.4, 0.2], [6.7, 3.0, 5.2, 2.3], [5.9, 3.0, 4.2, 1.5]]


@pytest.fixture(scope="session")
def iris_model(tmp_path_factory):
    """examples/iris/train_iris.py run outside runyard: outputs/model.joblib."""
    d = tmp_path_factory.mktemp("iris")
    subprocess.run([PY, str(IRIS / "train_iris.py")], cwd=d, check=True, capture_output=True,
                   env=dict(os.environ, PYTHONPATH=str(SDK)))
    return d / "outputs" / "model.joblib"


@pytest.fixture(scope="session")
def broken_model(tmp_path_factory):
    """A "model" file that joblib cannot load."""
    p = tmp_path_factory.mktemp("broken") / "model.joblib"
    p.write_text("not a pickle\n")
    return p


def direct(model_path, rows, method):
    """The same model loaded directly with joblib, in Debian's interpreter."""
    code = ("import joblib, json, sys; m = joblib.load(sys.argv[1]); "
            "print(json.dumps(getattr(m, sys.argv[2])(json.loads(sys.argv[3])).tolist()))")
    out = subprocess.run([PY, "-c", code, str(model_path), method, json.dumps(rows)],
                         check=True, capture_output=True, text=True).stdout
    return json.loads(out)


def register_file(d, name, path, *extra):
    return d.cli("model", "register", name, "--file", path, "--framework", "scikit-learn",
                 *extra, json=True).json


def deploy(d, ref, service, *extra, check=True):
    res = d.cli("model", "deploy", ref, "--service", service, *extra, json=True, check=check,
                timeout=DEADLINE * 2)
    return res.json if check is True else res


def post(port, path, body, ctype="application/json", timeout=60):
    """POST body (bytes, str, or something json writes); (status, parsed answer)."""
    if not isinstance(body, (bytes, str)):
        body = json.dumps(body)
    c = http.client.HTTPConnection("127.0.0.1", port, timeout=timeout)
    try:
        headers = {"Content-Type": ctype} if ctype else {}
        c.request("POST", path, body, headers)
        r = c.getresponse()
        data = r.read()
    finally:
        c.close()
    try:
        return r.status, json.loads(data)
    except ValueError:
        return r.status, data.decode()


def get(port, path):
    c = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
    try:
        c.request("GET", path)
        r = c.getresponse()
        return r.status, r.read().decode()
    finally:
        c.close()


def service(d, name):
    return d.rpc("service.show", {"service": name})


def wait_healthy(d, name, other_than_pid=None):
    def ok():
        s = service(d, name)
        if s["state"] == "Failed":
            raise AssertionError("service %s failed: %s" % (name, s["error"]))
        if s["state"] == "Healthy" and s["pid"] and s["pid"] != other_than_pid:
            return s
        return None
    return wait_for(ok, what="service %s to be Healthy" % name)


def train_run(d, source=IRIS, *args):
    run = d.submit(str(source), "train_iris.py", *args, experiment="iris")
    end = d.wait_terminal(run["id"])
    assert end["status"] == "Completed", (end, d.logs(run["id"]))
    return end


# -- registry ----------------------------------------------------------------------------


def test_register_from_run_then_version_2(daemon):
    run = train_run(daemon)
    arts = {a["path"]: a for a in daemon.rpc("run.outputs", {"run": run["id"]})["artifacts"]}
    m1 = daemon.cli("model", "register", "sklearn-iris", "--run", run["seq"], "--path",
                    "outputs/model.joblib", "--framework", "scikit-learn",
                    "--framework-version", "0.19.1", "--cpu", "1", "--memory-gb", "0.5",
                    "--tag", "area=iris", "--property", "algo=svc", "--description", "SVC",
                    json=True).json
    assert (m1["name"], m1["version"], m1["id"]) == ("sklearn-iris", 1, "sklearn-iris:1")
    assert m1["framework"] == "ScikitLearn" and m1["framework_version"] == "0.19.1"
    assert m1["resource_configuration"] == {"cpu": 1, "memory_in_gb": 0.5}
    assert m1["run"] == {"id": run["id"], "seq": run["seq"]}
    assert m1["path"] == "outputs/model.joblib"
    assert (m1["tags"], m1["properties"], m1["description"]) == ({"area": "iris"},
                                                                {"algo": "svc"}, "SVC")
    # The model's file is the run's artifact: the same blob, not a copy.
    [f] = m1["files"]
    art = arts["outputs/model.joblib"]
    assert (f["path"], f["size"], f["sha256"]) == ("model.joblib", art["size"], art["sha256"])
    blob = daemon.state_dir / "blobs" / "sha256" / f["sha256"][:2] / f["sha256"][2:]
    assert blob.exists()

    m2 = daemon.cli("model", "register", "sklearn-iris", "--run", run["id"], "--path",
                    "./outputs//model.joblib", "--framework", "sklearn", json=True).json
    assert m2["version"] == 2 and m2["files"][0]["sha256"] == f["sha256"]
    assert m2["framework_version"] is None and m2["resource_configuration"] is None

    listed = daemon.cli("model", "list", json=True).json["models"]
    assert [(m["id"], m["file_count"]) for m in listed] == [("sklearn-iris:1", 1),
                                                            ("sklearn-iris:2", 1)]
    assert daemon.cli("model", "show", "sklearn-iris", json=True).json["version"] == 2
    assert daemon.cli("model", "show", "sklearn-iris:1", json=True).json["version"] == 1
    table = daemon.cli("model", "list").stdout
    assert "sklearn-iris" in table and "ScikitLearn" in table

    # Download and check the bytes against the run's output.
    out = daemon.root / "dl"
    daemon.cli("model", "download", "sklearn-iris:1", out)
    got = (out / "model.joblib").read_bytes()
    want = daemon.client().call("artifact.read", {"run": run["id"],
                                                  "path": "outputs/model.joblib"})
    import base64
    assert got == base64.b64decode(want["data"])

    # A deleted version is never given again.
    daemon.cli("model", "delete", "sklearn-iris:2")
    assert daemon.cli("model", "register", "sklearn-iris", "--run", run["seq"], "--path",
                      "outputs/model.joblib", json=True).json["version"] == 3
    missing = daemon.cli("model", "show", "sklearn-iris:2", check=2)
    assert "NotFound" in missing.stderr


def test_register_folder_and_local_file(daemon, tmp_path, iris_model):
    folder = tmp_path / "bundle"
    (folder / "sub").mkdir(parents=True)
    (folder / "model.joblib").write_bytes(iris_model.read_bytes())
    (folder / "sub" / "vocab.txt").write_text("a\nb\n")
    m = daemon.cli("model", "register", "bundle", "--file", folder, json=True).json
    assert sorted(f["path"] for f in m["files"]) == ["bundle/model.joblib",
                                                     "bundle/sub/vocab.txt"]
    assert m["run"] is None and m["path"] == str(folder)
    m = register_file(daemon, "single", iris_model)
    assert [f["path"] for f in m["files"]] == ["model.joblib"]


def test_concurrent_registrations_get_distinct_versions(daemon, iris_model):
    n = 12
    results, errors = [], []

    def one():
        try:
            with daemon.client() as c:
                results.append(c.call("model.register", {"name": "many",
                                                          "file": str(iris_model)}))
        except Exception as e:  # noqa: BLE001 - reported below
            errors.append(repr(e))

    threads = [threading.Thread(target=one) for _ in range(n)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert not errors
    assert sorted(r["version"] for r in results) == list(range(1, n + 1))


def test_bad_registrations_change_nothing(daemon, tmp_path, iris_model):
    run = train_run(daemon)
    cases = [
        (["bad/name", "--file", iris_model], "not a model name"),
        ([".hidden", "--file", iris_model], "not a model name"),
        (["x" * 256, "--file", iris_model], "not a model name"),
        (["ok", "--file", iris_model, "--framework-version", "1.0"], "needs a framework"),
        (["ok", "--file", iris_model, "--framework", "cobol"], "unknown framework"),
        (["ok", "--run", run["seq"], "--path", "../state/runyard.db"], "not a path among"),
        (["ok", "--run", run["seq"], "--path", "outputs/nope.joblib"], "has no output"),
        (["ok", "--run", "4242", "--path", "outputs/model.joblib"], "no run"),
        (["ok", "--file", tmp_path / "missing.joblib"], "missing.joblib"),
    ]
    for args, message in cases:
        res = daemon.cli("model", "register", *args, check=False)
        assert res.rc in (1, 2), res
        assert message in res.stderr, (message, res)
    # Usage errors of the CLI itself.
    assert daemon.cli("model", "register", "x", check=1).rc == 1
    assert daemon.cli("model", "register", "x", "--run", "1", check=1).rc == 1
    with daemon.client() as c:
        for args, code in [({"name": "x", "path": "outputs/model.joblib", "file": "/x"},
                            "InvalidArgument"),
                           ({"name": "x", "file": "relative"}, "InvalidArgument"),
                           ({"name": "x", "file": str(iris_model), "cpu": -1},
                            "InvalidArgument"),
                           ({"name": "x", "file": str(iris_model), "tags": {"k": 1}},
                            "InvalidArgument"),
                           ({"name": "x", "file": str(iris_model),
                             "tags": {"t%d" % i: "v" for i in range(51)}}, "TooLarge")]:
            with pytest.raises(ryclient.ProtocolError) as e:
                c.call("model.register", args)
            assert e.value.code == code, (args, e.value)
        with pytest.raises(ryclient.ProtocolError) as e:
            c.call("model.delete", {"model": "nope:1"})
        assert e.value.code == "NotFound"
    assert daemon.rpc("model.list")["models"] == []
    # Delete needs the exact version.
    register_file(daemon, "ok", iris_model)
    res = daemon.cli("model", "delete", "ok", check=2)
    assert "name the version" in res.stderr


def test_register_from_inside_the_run_with_its_token(daemon, make_tree):
    """run.register_model in the training script (the seed's code): the model
    comes from the running run's working directory, and its output stored at
    the end is the same blob. A run's token registers its own outputs only."""
    src = make_tree({
        "train_iris.py": (IRIS / "train_iris.py").read_text() + script("""
            from azureml.core import Model
            from azureml.core.resource_configuration import ResourceConfiguration
            model = run.register_model(model_name='sklearn-iris',
                                       model_path='outputs/model.joblib',
                                       model_framework=Model.Framework.SCIKITLEARN,
                                       model_framework_version='0.19.1',
                                       resource_configuration=ResourceConfiguration(
                                           cpu=1, memory_in_gb=0.5))
            print("registered", model.id, model.framework, model.run_id == run.id)
            import os, runyard
            from runyard._run import _Client
            c = _Client(os.environ["RUNYARD_SOCKET"])
            try:
                c.call("model.register", {"name": "other", "run": "1",
                                          "path": "outputs/model.joblib",
                                          "token": os.environ["RUNYARD_RUN_TOKEN"]})
            except runyard.DaemonError as e:
                print("other run:", e.code)
        """),
    })
    first = train_run(daemon)  # run #1, whose outputs the second must not reach
    run = train_run(daemon, src)
    text = "\n".join(l["text"] for l in daemon.logs(run["id"]))
    assert "registered sklearn-iris:1 ScikitLearn True" in text, text
    assert "other run: PermissionDenied" in text, text
    m = daemon.rpc("model.show", {"model": "sklearn-iris:1"})
    assert m["run"]["seq"] == run["seq"] and m["framework_version"] == "0.19.1"
    assert m["resource_configuration"] == {"cpu": 1, "memory_in_gb": 0.5}
    arts = {a["path"]: a for a in daemon.rpc("run.outputs", {"run": run["id"]})["artifacts"]}
    assert m["files"][0]["sha256"] == arts["outputs/model.joblib"]["sha256"]
    assert first["seq"] == 1 and [x["name"] for x in daemon.rpc("model.list")["models"]] == [
        "sklearn-iris"]


# -- deploying and scoring -------------------------------------------------------------------


def test_deploy_score_and_compare_with_joblib(daemon, iris_model):
    register_file(daemon, "sklearn-iris", iris_model, "--framework-version", "1.2")
    s = deploy(daemon, "sklearn-iris", "iris-svc")
    assert s["state"] == "Healthy" and s["model"] == "sklearn-iris:1" and s["pid"]
    assert s["scoring_uri"] == "http://127.0.0.1:%d/score" % s["port"]
    port = s["port"]

    assert get(port, "/") == (200, "Healthy")
    assert get(port, "/ping")[0] == 200
    want = direct(iris_model, ROWS, "predict")
    # The iris SVC has no predict_proba: predict is the default.
    assert post(port, "/score", {"data": ROWS}) == (200, want)
    assert post(port, "/score", {"data": ROWS, "method": "predict"}) == (200, want)
    assert post(port, "/invocations", {"instances": ROWS}) == (200, {"predictions": want})
    assert post(port, "/invocations", {"inputs": ROWS}) == (200, {"predictions": want})
    assert post(port, "/invocations", {"dataframe_split": {"columns": ["a", "b", "c", "d"],
                                                           "data": ROWS}}) == (
        200, {"predictions": want})
    # The CLI posts with libcurl.
    res = daemon.cli("service", "invoke", "iris-svc", "--data", json.dumps({"data": ROWS}))
    assert json.loads(res.stdout) == want
    res = daemon.cli("service", "invoke", "iris-svc", "--data", json.dumps({"instances": ROWS}),
                     "--path", "/invocations", json=True)
    assert res.json == {"status": 200, "response": {"predictions": want}}

    listed = daemon.cli("service", "list", json=True).json["services"]
    assert [(x["name"], x["state"], x["port"]) for x in listed] == [("iris-svc", "Healthy",
                                                                     port)]
    assert "Healthy" in daemon.cli("service", "list").stdout
    assert daemon.rpc("model.show", {"model": "sklearn-iris:1"})["services"] == ["iris-svc"]
    logs = daemon.cli("service", "logs", "iris-svc").stdout
    assert "loaded model sklearn-iris:1" in logs and "is healthy and serving" in logs


def test_predict_proba_default_when_the_model_has_it(daemon, tmp_path):
    model = tmp_path / "lr.joblib"
    subprocess.run([PY, "-c", script("""
        import joblib, sys
        from sklearn.datasets import load_iris
        from sklearn.linear_model import LogisticRegression
        X, y = load_iris(return_X_y=True)
        joblib.dump(LogisticRegression(max_iter=500).fit(X, y), sys.argv[1])
    """), str(model)], check=True)
    register_file(daemon, "lr", model)
    port = deploy(daemon, "lr:1", "lr-svc")["port"]
    status, proba = post(port, "/score", {"data": ROWS})
    assert status == 200
    want = direct(model, ROWS, "predict_proba")
    assert len(proba) == 3 and all(abs(a - b) < 1e-9 for r, w in zip(proba, want)
                                   for a, b in zip(r, w))
    assert post(port, "/score", {"data": ROWS, "method": "predict"}) == (
        200, direct(model, ROWS, "predict"))


def test_error_statuses(daemon, iris_model):
    """The statuses of Azure ML's inference server on /score and MLflow's
    scoring server on /invocations (issue 20 changed them from runyard's
    own: a body that is not JSON was a 415 here and is the peer's 400, rows
    of the wrong shape were a 400 and are the 500 of the peer's no-code
    run(), a model failing on /invocations is MLflow's 400 BAD_REQUEST).
    test_serving_azure.py and test_serving_mlflow.py go through every row of
    the conformance table; this keeps the old cases."""
    register_file(daemon, "sklearn-iris", iris_model)
    port = deploy(daemon, "sklearn-iris", "iris-svc")["port"]
    ok = {"data": ROWS}
    # 415: a Content-Type that is not JSON, or none.
    status, body = post(port, "/score", json.dumps(ok), ctype="text/plain")
    assert status == 415 and "application/json" in body["message"]
    assert post(port, "/score", json.dumps(ok), ctype=None)[0] == 415
    # 400: a body that is empty, or not JSON, or not an object, or without data.
    status, body = post(port, "/score", "this is not json")
    assert status == 400 and "could not be decoded as JSON" in body["message"]
    assert post(port, "/score", b"\xff\xfe")[0] == 400
    assert post(port, "/score", "")[0] == 400
    assert post(port, "/score", [1, 2]) == (400, {"message": "POST body should be a JSON "
                                                             "dictionary."})
    assert post(port, "/score", {"dat": ROWS})[0] == 400
    status, body = post(port, "/invocations", "nope")
    assert status == 400 and body["error_code"] == "BAD_REQUEST"
    # 500: run() failed on the rows, with the reason after the peer's sentence.
    for bad, words in [({"data": []}, "non-empty"), ({"data": [1, 2, 3, 4]}, "must be a row"),
                       ({"data": [[1, 2, 3, 4], [1, 2]]}, "has 2 values"),
                       ({"data": [[1, 2, 3]]}, "4 feature values"),
                       ({"data": [[[1], 2, 3, 4]]}, "holds a list"),
                       ({"data": ROWS, "method": "fit"}, "method must be"),
                       ({"data": ROWS, "method": "predict_proba"}, "no predict_proba"),
                       ({"data": [["a", "b", "c", "d"]]}, "could not convert")]:
        status, body = post(port, "/score", bad)
        assert status == 500 and words in body["message"], (bad, status, body)
        assert body["message"].startswith("An unexpected error occurred in scoring script.")
    status, body = post(port, "/invocations", {"rows": ROWS})
    assert status == 400 and body["error_code"] == "BAD_REQUEST"
    status, body = post(port, "/invocations", {"instances": [["a", "b", "c", "d"]]})
    assert status == 400 and body["error_code"] == "BAD_REQUEST" and "stack_trace" in body
    # Wrong routes and methods.
    assert get(port, "/nope")[0] == 404
    assert get(port, "/invocations")[0] == 405
    # The CLI exits 2 on an error answer and prints it.
    res = daemon.cli("service", "invoke", "iris-svc", "--data", "{}", check=2)
    assert "400" in res.stderr and "data" in res.stdout
    # The server is still fine.
    assert post(port, "/score", ok)[0] == 200
    logs = daemon.cli("service", "logs", "iris-svc").stdout
    assert "POST /score 500" in logs and "Traceback" in logs


def test_http_details(daemon, iris_model):
    """Keep-alive, pipelining, chunked bodies and Expect: 100-continue."""
    register_file(daemon, "m", iris_model)
    port = deploy(daemon, "m", "svc")["port"]
    want = direct(iris_model, ROWS, "predict")
    body = json.dumps({"data": ROWS})
    c = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
    for _ in range(5):  # one connection, five requests
        c.request("POST", "/score", body, {"Content-Type": "application/json"})
        r = c.getresponse()
        assert r.status == 200 and json.loads(r.read()) == want and not r.will_close
    # An iterable body without a length goes chunked.
    c.request("POST", "/score", iter([body[:10].encode(), body[10:].encode()]),
              {"Content-Type": "application/json"})
    r = c.getresponse()
    assert r.status == 200 and json.loads(r.read()) == want
    c.close()
    res = subprocess.run(["curl", "-s", "--noproxy", "*", "-H", "Content-Type: application/json",
                          "-H", "Expect: 100-continue", "--data-binary",
                          json.dumps({"data": ROWS * 50}),
                          "http://127.0.0.1:%d/score" % port], capture_output=True, text=True,
                         timeout=30)
    assert json.loads(res.stdout) == want * 50


def test_delete_refused_while_deployed(daemon, iris_model):
    register_file(daemon, "sklearn-iris", iris_model)
    register_file(daemon, "sklearn-iris", iris_model)
    deploy(daemon, "sklearn-iris:1", "iris-svc")
    res = daemon.cli("model", "delete", "sklearn-iris:1", check=2)
    assert "Conflict" in res.stderr and "iris-svc" in res.stderr
    daemon.cli("model", "delete", "sklearn-iris:2")
    daemon.cli("service", "delete", "iris-svc")
    assert daemon.rpc("service.list")["services"] == []
    daemon.cli("model", "delete", "sklearn-iris:1")
    assert daemon.rpc("model.list")["models"] == []


def test_deploy_errors(daemon, tmp_path, iris_model, broken_model):
    register_file(daemon, "m", iris_model)
    daemon.cli("model", "register", "plain", "--file", iris_model, json=True)
    daemon.cli("model", "register", "onnx", "--file", iris_model, "--framework", "onnx",
               json=True)
    for args, words in [(["nope", "--service", "s"], "no model 'nope'"),
                        (["m:7", "--service", "s"], "no model 'm:7'"),
                        (["m", "--service", "bad name"], "not a service name"),
                        (["plain", "--service", "s"], "no framework"),
                        (["onnx", "--service", "s"], "ScikitLearn models only"),
                        (["m", "--service", "s", "--python", "/nonexistent/python"],
                         "/nonexistent/python"),
                        (["m", "--service", "s", "--environment", "nope-env"],
                         "no environment named 'nope-env'"),
                        (["m", "--service", "s", "--environment", "sklearn", "--python", PY],
                         "not both")]:
        res = daemon.cli("model", "deploy", *args, check=2)
        assert words in res.stderr, (args, res)
    assert daemon.rpc("service.list")["services"] == []
    # A model that does not load: Failed, with the reason and its last log lines.
    register_file(daemon, "broken", broken_model)
    res = deploy(daemon, "broken", "bad-svc", check=2)
    assert "DeploymentFailed" in res.stderr and "before it answered Healthy" in res.stderr
    assert "cannot load model broken:1" in res.stderr, res  # from the server's log
    s = service(daemon, "bad-svc")
    assert s["state"] == "Failed" and "cannot load model" in s["error"] and s["pid"] is None
    show = daemon.cli("service", "show", "bad-svc").stdout
    assert "Failed" in show and "cannot load model" in show
    # Its port refuses connections rather than keeping clients waiting.
    with pytest.raises(OSError):
        post(s["port"], "/score", {"data": ROWS}, timeout=5)
    # A port in use is a conflict.
    ok = deploy(daemon, "m", "good")
    res = deploy(daemon, "m", "other", "--port", ok["port"], check=2)
    assert "Conflict" in res.stderr and "service 'good'" in res.stderr
    import socket
    taken = socket.socket()
    taken.bind(("127.0.0.1", 0))
    taken.listen()
    try:
        res = deploy(daemon, "m", "other", "--port", taken.getsockname()[1], check=2)
        assert "Conflict" in res.stderr and "in use" in res.stderr
    finally:
        taken.close()
    res = deploy(daemon, "m", "good", "--port", ok["port"] + 1 if ok["port"] < 65535 else 1,
                 check=2)
    assert "listens on port" in res.stderr


def test_killed_server_comes_back_healthy(daemon, iris_model):
    register_file(daemon, "sklearn-iris", iris_model)
    s = deploy(daemon, "sklearn-iris", "iris-svc")
    port, pid = s["port"], s["pid"]
    os.kill(pid, signal.SIGKILL)
    wait_for(lambda: not pid_alive(pid), what="the server to die")
    # A request sent now waits in the service's accept queue, which the
    # daemon keeps open, until the restarted server takes it.
    assert post(port, "/score", {"data": ROWS}) == (200, direct(iris_model, ROWS, "predict"))
    s2 = wait_healthy(daemon, "iris-svc", other_than_pid=pid)
    assert s2["restarts"] >= 1 and s2["port"] == port
    logs = daemon.cli("service", "logs", "iris-svc").stdout
    assert "killed by signal 9" in logs and "restarting in" in logs
    # Killed again: back again (with a growing delay).
    os.kill(s2["pid"], signal.SIGKILL)
    s3 = wait_healthy(daemon, "iris-svc", other_than_pid=s2["pid"])
    assert s3["restarts"] >= 2
    assert post(port, "/score", {"data": ROWS})[0] == 200


class Hammer:
    """Clients posting without pause: one keeps its connection alive, one
    opens a new connection per request."""

    def __init__(self, port):
        self.port = port
        self.stop = threading.Event()
        self.ok = 0
        self.models = []
        self.failures = []
        self.lock = threading.Lock()
        self.threads = [threading.Thread(target=self.loop, args=(keep,), daemon=True)
                        for keep in (True, False)]

    def loop(self, keep):
        body = json.dumps({"data": ROWS})
        conn = None
        while not self.stop.is_set():
            try:
                if conn is None:
                    conn = http.client.HTTPConnection("127.0.0.1", self.port, timeout=60)
                conn.request("POST", "/score", body, {"Content-Type": "application/json"})
                r = conn.getresponse()
                data = r.read()
                with self.lock:
                    if r.status == 200:
                        self.ok += 1
                    else:
                        self.failures.append((r.status, data[:200]))
                if not keep or r.will_close:
                    conn.close()
                    conn = None
            except Exception as e:  # noqa: BLE001 - every failure counts
                with self.lock:
                    self.failures.append(repr(e))
                if conn is not None:
                    conn.close()
                conn = None

    def __enter__(self):
        for t in self.threads:
            t.start()
        return self

    def __exit__(self, *exc):
        self.stop.set()
        for t in self.threads:
            t.join(60)

    def count(self):
        with self.lock:
            return self.ok


def test_version_swap_under_continuous_clients(daemon, iris_model, broken_model):
    for _ in range(3):
        register_file(daemon, "sklearn-iris", iris_model)
    register_file(daemon, "broken", broken_model)
    s = deploy(daemon, "sklearn-iris:1", "iris-svc")
    port, pid1 = s["port"], s["pid"]
    with Hammer(port) as h:
        wait_for(lambda: h.count() > 20, what="requests flowing")
        s2 = deploy(daemon, "sklearn-iris:2", "iris-svc")
        assert s2["model"] == "sklearn-iris:2" and s2["pid"] != pid1 and s2["state"] == "Healthy"
        before = h.count()
        wait_for(lambda: not pid_alive(pid1), what="the old server to stop")
        wait_for(lambda: h.count() > before + 20, what="requests after the swap")
        # A restart is a swap too.
        s3 = daemon.cli("service", "restart", "iris-svc", json=True).json
        assert s3["pid"] != s2["pid"] and s3["model"] == "sklearn-iris:2"
        before = h.count()
        wait_for(lambda: h.count() > before + 20, what="requests after the restart")
        # A version that fails to start leaves the old one serving.
        res = deploy(daemon, "broken", "iris-svc", check=2)
        assert "DeploymentFailed" in res.stderr
        s4 = service(daemon, "iris-svc")
        assert (s4["state"], s4["model"], s4["pid"]) == ("Healthy", "sklearn-iris:2", s3["pid"])
        assert "cannot load model broken:1" in s4["error"]
        s5 = deploy(daemon, "sklearn-iris:3", "iris-svc")
        before = h.count()
        wait_for(lambda: h.count() > before + 20, what="requests after the last swap")
    assert h.failures == [], h.failures[:5]
    assert h.ok > 100
    assert s5["model"] == "sklearn-iris:3" and s5["error"] is None
    # Clients of the keep-alive kind were told to reconnect, not cut off.
    logs = daemon.cli("service", "logs", "iris-svc").stdout
    assert logs.count("is healthy and serving") == 4


def test_entry_script(daemon, make_tree, iris_model):
    src = make_tree({
        "score.py": script("""
            import json, os
            import joblib
            from azureml.core.model import Model

            def init():
                global model
                model = joblib.load(Model.get_model_path("sklearn-iris"))
                print("init done", os.path.basename(os.environ["AZUREML_MODEL_DIR"]))

            def run(raw_data):
                data = json.loads(raw_data)["data"]
                if data == "boom":
                    raise ValueError("boom")
                return {"labels": model.predict(data).tolist(), "n": len(data)}
        """),
        "helper.txt": "x",
    }, name="scoring")
    register_file(daemon, "sklearn-iris", iris_model)
    s = daemon.cli("model", "deploy", "sklearn-iris", "--service", "custom", "--entry-script",
                   "score.py", "--source", src, json=True, timeout=DEADLINE * 2).json
    assert s["kind"] == "entry-script" and s["entry_script"] == "score.py"
    port = s["port"]
    want = direct(iris_model, ROWS, "predict")
    assert post(port, "/score", {"data": ROWS}) == (200, {"labels": want, "n": 3})
    assert post(port, "/invocations", {"instances": ROWS}) == (
        200, {"predictions": {"labels": want, "n": 3}})
    status, body = post(port, "/score", {"data": "boom"})
    assert status == 500 and "boom" in body["message"]
    # Any Content-Type reaches run(), as on the Azure peer (a 415 before
    # issue 20): this script's json.loads fails on it, a 500.
    assert post(port, "/score", "nope", ctype="text/plain")[0] == 500
    assert get(port, "/") == (200, "Healthy")
    # The script was snapshotted: editing it changes nothing deployed.
    (src / "score.py").write_text("raise SystemExit(1)\n")
    assert post(port, "/score", {"data": ROWS})[0] == 200
    assert "init done 1" in daemon.cli("service", "logs", "custom").stdout
    # A script that is not there, or whose init() fails.
    res = deploy(daemon, "sklearn-iris", "x", "--entry-script", "missing.py", "--source", src,
                 check=2)
    assert "missing.py" in res.stderr
    bad = make_tree({"score.py": "def init():\n    raise RuntimeError('no init for you')\n"
                                 "def run(raw):\n    return 1\n"}, name="bad")
    res = deploy(daemon, "sklearn-iris", "y", "--entry-script", "score.py", "--source", bad,
                 check=2)
    assert "no init for you" in res.stderr


def test_services_survive_a_daemon_restart(daemon, iris_model):
    register_file(daemon, "sklearn-iris", iris_model)
    s = deploy(daemon, "sklearn-iris", "iris-svc")
    port, pid = s["port"], s["pid"]
    daemon.stop()
    # The server keeps serving while the daemon is down.
    assert post(port, "/score", {"data": ROWS})[0] == 200
    daemon.start()
    s2 = wait_healthy(daemon, "iris-svc", other_than_pid=pid)
    assert s2["port"] == port and s2["model"] == "sklearn-iris:1"
    # The server left from before is replaced once the new one is healthy.
    wait_for(lambda: not pid_alive(pid), what="the old server to be stopped")
    assert post(port, "/score", {"data": ROWS})[0] == 200
    listed = daemon.cli("service", "list", json=True).json["services"]
    assert [(x["name"], x["state"]) for x in listed] == [("iris-svc", "Healthy")]
    # Killed daemon: the same.
    daemon.kill9()
    assert post(port, "/score", {"data": ROWS})[0] == 200
    daemon.start()
    wait_healthy(daemon, "iris-svc", other_than_pid=s2["pid"])
    wait_for(lambda: not pid_alive(s2["pid"]), what="the old server to be stopped")
    assert post(port, "/score", {"data": ROWS})[0] == 200


def test_service_logs_and_delete(daemon, iris_model):
    register_file(daemon, "sklearn-iris", iris_model)
    s = deploy(daemon, "sklearn-iris", "iris-svc")
    res = daemon.rpc("service.logs", {"service": "iris-svc", "lines": 2})
    assert res["text"].count("\n") == 2
    everything = daemon.rpc("service.logs", {"service": "iris-svc"})
    assert everything["next"] == everything["size"]
    more = daemon.rpc("service.logs", {"service": "iris-svc", "after": everything["next"]})
    assert more["text"] == "" and not more["reset"]
    # Follow: new lines show up.
    cli = subprocess.Popen([str(daemon_cli()), "--socket", daemon.socket, "service", "logs",
                            "iris-svc", "-f"], stdout=subprocess.PIPE, text=True)
    try:
        post(s["port"], "/score", "not json")  # the peer's 400
        wait_for(lambda: "POST /score 400" in daemon.rpc("service.logs",
                                                         {"service": "iris-svc"})["text"],
                 what="the 400 in the log")
        line = ""
        while "POST /score 400" not in line:
            line = cli.stdout.readline()
            assert line, "logs -f ended"
    finally:
        cli.kill()
        cli.wait()
        cli.stdout.close()
    daemon.cli("service", "delete", "iris-svc")
    wait_for(lambda: not pid_alive(s["pid"]), what="the server to stop")
    assert daemon.cli("service", "show", "iris-svc", check=2).rc == 2
    with pytest.raises(OSError):
        post(s["port"], "/score", {"data": ROWS}, timeout=5)


def daemon_cli():
    from conftest import CLI
    return CLI


# -- Python ---------------------------------------------------------------------------------


NOTEBOOK = script("""
    import json, sys
    from azureml.core import Model, Run, Workspace
    from azureml.core.resource_configuration import ResourceConfiguration
    from azureml.core.webservice import Webservice
    from azureml.exceptions import WebserviceException

    ws = Workspace.from_config()
    run = Run.get(ws, sys.argv[1])
    print("run", run.get_status(), run.get_metrics()["Kernel type"])
    model = run.register_model(model_name='sklearn-iris',
                               model_path='outputs/model.joblib',
                               model_framework=Model.Framework.SCIKITLEARN,
                               model_framework_version='0.19.1',
                               resource_configuration=ResourceConfiguration(cpu=1,
                                                                            memory_in_gb=0.5))
    print("model", model.id, model.framework, model.resource_configuration.cpu)
    service = Model.deploy(ws, "scikit-learn-service", [model])
    service.wait_for_deployment(show_output=True)
    print("state", service.state, service.scoring_uri.startswith("http://127.0.0.1:"))
    rows = [[5.1, 3.5, 1.4, 0.2], [6.7, 3.0, 5.2, 2.3], [5.9, 3.0, 4.2, 1.5]]
    print("answer", json.dumps(service.run(json.dumps({"data": rows}))))
    try:
        service.run(json.dumps({"data": [[1, 2]]}))
    except WebserviceException as e:
        print("error", e.status)
    try:
        Model.deploy(ws, "scikit-learn-service", [model])
    except WebserviceException as e:
        print("exists", "already exists" in str(e))
    local = Model.register(ws, model_path=sys.argv[2], model_name="sklearn-iris",
                           model_framework=Model.Framework.SCIKITLEARN)
    service.update(models=[local])
    service.wait_for_deployment()
    print("updated", Webservice(ws, "scikit-learn-service").models, local.version)
    print("logs", "is healthy and serving" in service.get_logs())
    print("listed", [m.version for m in Model.list(ws, name="sklearn-iris")])
    print("downloaded", Model(ws, "sklearn-iris", version=1).download(sys.argv[3]))
    service.delete()
    print("after delete", [s.name for s in Webservice.list(ws)])
""")


def test_azureml_calls_from_a_run_and_a_notebook(daemon, make_tree, tmp_path, iris_model):
    run = train_run(daemon)
    nb = tmp_path / "notebook.py"
    nb.write_text(NOTEBOOK)
    env = dict(os.environ, RUNYARD_SOCKET=daemon.socket, PYTHONPATH=str(SDK))
    env.pop("RUNYARD_RUN_ID", None)
    res = subprocess.run([PY, str(nb), str(run["seq"]), str(iris_model), str(tmp_path / "dl")],
                         capture_output=True, text=True, env=env, timeout=DEADLINE * 3)
    assert res.returncode == 0, res.stderr + res.stdout
    out = res.stdout
    want = direct(iris_model, ROWS, "predict")
    # Two features for a model of four: the Azure peer's no-code run() fails,
    # a 500 (a 400 before issue 20).
    for line in ["run Completed linear", "model sklearn-iris:1 ScikitLearn 1",
                 "Healthy\nLocal service creation operation finished, operation \"Succeeded\"",
                 "state Healthy True", "answer %s" % json.dumps(want), "error 500",
                 "exists True", "updated ['sklearn-iris:2'] 2", "logs True",
                 "listed [1, 2]", "downloaded %s" % (tmp_path / "dl" / "model.joblib"),
                 "after delete []"]:
        assert line in out, (line, out)

    # The same calls from inside a run: deploy and score from the training
    # script itself, with the native module.
    src = make_tree({
        "train_iris.py": (IRIS / "train_iris.py").read_text() + script("""
            import json, runyard
            r = runyard.get_run()
            m = r.register_model("from-run", "outputs/model.joblib",
                                 model_framework=runyard.Model.Framework.SCIKITLEARN)
            svc = runyard.Model.deploy(r.experiment.workspace, "from-run-svc", [m])
            svc.wait_for_deployment()
            print("in-run answer", json.dumps(svc.run({"data": [[5.1, 3.5, 1.4, 0.2]]})))
        """),
    }, name="inrun")
    run2 = train_run(daemon, src)
    text = "\n".join(l["text"] for l in daemon.logs(run2["id"]))
    assert "in-run answer [%d]" % want[0] in text, text
    assert service(daemon, "from-run-svc")["model"] == "from-run:1"


def test_offline_register_model_says_what_to_do(tmp_path):
    res = subprocess.run([PY, "-c", "from azureml.core import Run\n"
                          "Run.get_context().register_model('m', 'outputs/m.pkl')"],
                         capture_output=True, text=True,
                         env=dict(os.environ, PYTHONPATH=str(SDK), RUNYARD_RUN_ID=""))
    assert res.returncode != 0 and "Model.register(workspace" in res.stderr
