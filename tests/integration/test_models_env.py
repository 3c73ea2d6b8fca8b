"""model deploy --environment (docs/models.md): the scoring server runs with
the environment's interpreter and variables; a venv environment is built
first, once, with the machinery runs use (docs/environments.md). Offline:
venvs see Debian's site-packages (scikit-learn, joblib)."""

import os

from conftest import DEADLINE, PY, script, wait_for
from test_models import ROWS, deploy, direct, get, post, register_file, service, wait_healthy
from test_models import iris_model  # noqa: F401 (a fixture)


def venv_daemon_env():
    return {"PATH": "/usr/bin:/bin:" + os.environ.get("PATH", "")}


def builds(d, hash_):
    return [l for l in d.log_text().splitlines()
            if ": building (pid" in l and hash_[:12] in l]


SCORE = script("""
    import json, os, sys
    import joblib
    from azureml.core.model import Model

    def init():
        global model
        model = joblib.load(Model.get_model_path("sklearn-iris"))

    def run(raw_data):
        data = json.loads(raw_data)["data"]
        return {"labels": model.predict(data).tolist(), "python": sys.executable,
                "prefix": sys.prefix, "greeting": os.environ.get("GREETING")}
""")


def test_deploy_in_the_sklearn_environment(daemon, iris_model):  # noqa: F811
    register_file(daemon, "sklearn-iris", iris_model)
    s = deploy(daemon, "sklearn-iris", "iris-svc", "--environment", "sklearn")
    assert s["state"] == "Healthy" and s["environment"] == "sklearn:1", s
    assert s["python"] == "/usr/bin/python3"
    assert post(s["port"], "/score", {"data": ROWS}) == (
        200, direct(iris_model, ROWS, "predict"))
    shown = daemon.cli("service", "show", "iris-svc").stdout
    assert "sklearn:1" in shown, shown
    # Without an environment the field is null.
    s2 = deploy(daemon, "sklearn-iris", "plain")
    assert s2["environment"] is None


def test_unknown_environment_deploys_nothing(daemon, iris_model):  # noqa: F811
    register_file(daemon, "sklearn-iris", iris_model)
    for ref, words in [("nope", "no environment named 'nope'"),
                       ("sklearn:2", "has only version 1"),
                       ("bad name!", "is not an environment name")]:
        res = deploy(daemon, "sklearn-iris", "svc", "--environment", ref, check=2)
        assert words in res.stderr, res
    assert daemon.rpc("service.list")["services"] == []
    # An existing service is left as it is.
    s = deploy(daemon, "sklearn-iris", "svc")
    res = deploy(daemon, "sklearn-iris", "svc", "--environment", "nope", check=2)
    assert "NotFound" in res.stderr
    after = service(daemon, "svc")
    assert after["pid"] == s["pid"] and after["environment"] is None


def test_a_venv_environment_is_built_once_then_served(daemon_factory, tmp_path, make_tree,
                                                      iris_model):  # noqa: F811
    d = daemon_factory(env=venv_daemon_env())
    register_file(d, "sklearn-iris", iris_model)
    reqs = tmp_path / "requirements.txt"
    reqs.write_text("scikit-learn\njoblib\n")
    e = d.cli("env", "create", "serve", "--pip-requirements", reqs, "--python", PY,
              "--system-site-packages", "--var", "PIP_NO_INDEX=1", "--var",
              "GREETING=hello", json=True).json
    src = make_tree({"score.py": SCORE}, name="scoring")
    s = d.cli("model", "deploy", "sklearn-iris", "--service", "venv-svc", "--entry-script",
              "score.py", "--source", src, "--environment", "serve", json=True,
              timeout=DEADLINE * 2).json
    assert s["state"] == "Healthy" and s["environment"] == "serve:1", s
    venv_py = str(d.state_dir / "envs" / e["hash"] / "bin" / "python")
    assert s["python"] == venv_py
    status, out = post(s["port"], "/score", {"data": ROWS})
    assert status == 200, out
    assert out["labels"] == direct(iris_model, ROWS, "predict")
    assert out["prefix"] == str(d.state_dir / "envs" / e["hash"]), out
    assert out["greeting"] == "hello"
    assert len(builds(d, e["hash"])) == 1
    # A run in the same environment finds the build cached; prune keeps it
    # while the service uses it.
    run = d.cli("submit", "--source", src, "--environment", "serve", "--", "score.py",
                json=True).json
    assert d.wait_terminal(run["id"], timeout=300)["status"] == "Completed"
    assert len(builds(d, e["hash"])) == 1
    assert d.rpc("env.prune", {"keep": 0})["pruned"] == []
    # After a daemon restart the service runs in its environment again.
    pid = s["pid"]
    d.restart()
    s2 = wait_healthy(d, "venv-svc", other_than_pid=pid)
    assert s2["environment"] == "serve:1" and s2["python"] == venv_py
    wait_for(lambda: service(d, "venv-svc")["instances"][0]["pid"] == s2["pid"]
             and len(service(d, "venv-svc")["instances"]) == 1,
             what="the old server to be replaced")
    status, out = post(s2["port"], "/score", {"data": ROWS})
    assert status == 200 and out["greeting"] == "hello", out
    # Swapped to the plain interpreter: the environment goes.
    s3 = d.cli("model", "deploy", "sklearn-iris", "--service", "venv-svc", "--entry-script",
               "score.py", "--source", src, json=True, timeout=DEADLINE * 2).json
    assert s3["environment"] is None and s3["python"] == PY
    assert post(s3["port"], "/score", {"data": ROWS})[1]["greeting"] is None


def test_a_failed_build_deploys_nothing(daemon_factory, tmp_path, iris_model):  # noqa: F811
    d = daemon_factory(env=venv_daemon_env())
    register_file(d, "sklearn-iris", iris_model)
    reqs = tmp_path / "requirements.txt"
    reqs.write_text("no-such-package-runyard-test==9.9\n")
    d.cli("env", "create", "broken", "--pip-requirements", reqs, "--python", PY,
          "--system-site-packages", "--var", "PIP_NO_INDEX=1")
    res = deploy(d, "sklearn-iris", "svc", "--environment", "broken", check=2)
    assert "DeploymentFailed" in res.stderr and "broken:1" in res.stderr, res
    assert "no-such-package-runyard-test" in res.stderr, res
    assert d.rpc("service.list")["services"] == []
