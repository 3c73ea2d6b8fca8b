"""Environments (docs/environments.md): definitions, versions, conda YAML,
built-ins, builds in Preparing (once per definition, cached), and runs in
their environment. Offline: venvs see Debian's site-packages, or install a
wheel this test builds into a local directory.
"""

import os
import shutil
import zipfile

from conftest import PY, REPO

IRIS = REPO / "examples" / "iris"


def test_builtins_are_listed_and_cannot_be_replaced(daemon):
    envs = {e["name"]: e for e in daemon.cli("env", "list", json=True).json["environments"]}
    assert envs["system"]["kind"] == "interpreter" and envs["system"]["builtin"]
    assert envs["sklearn"]["definition"]["python"] == "/usr/bin/python3"
    assert envs["sklearn"]["definition"]["system_site_packages"] is True
    res = daemon.cli("env", "create", "system", "--interpreter", PY, check=False)
    assert res.rc != 0 and "built-in" in res.stderr
    res = daemon.cli("env", "delete", "sklearn", check=False)
    assert res.rc != 0 and "built in" in res.stderr


def test_same_definition_same_version_changed_new_version(daemon, tmp_path):
    reqs = tmp_path / "requirements.txt"
    reqs.write_text("# the model's needs\nscikit-learn\nnumpy  # arrays\n\njoblib\n")
    a = daemon.cli("env", "create", "web", "--pip-requirements", reqs, "--python", PY,
                   "--system-site-packages", json=True).json
    assert a["version"] == 1 and a["created"] and a["kind"] == "venv"
    assert a["definition"]["requirements"] == ["scikit-learn", "numpy", "joblib"]
    # Comments and blank lines are not part of the definition.
    reqs.write_text("scikit-learn\nnumpy\njoblib\n")
    b = daemon.cli("env", "create", "web", "--pip-requirements", reqs, "--python", PY,
                   "--system-site-packages", json=True).json
    assert b["version"] == 1 and not b["created"] and b["hash"] == a["hash"]
    out = daemon.cli("env", "create", "web", "--pip-requirements", reqs, "--python", PY,
                     "--system-site-packages").stdout
    assert "Unchanged environment web:1" in out
    c = daemon.cli("env", "create", "web", "--pip-requirements", reqs, "--python", PY,
                   json=True).json
    assert c["version"] == 2 and c["created"] and c["hash"] != a["hash"]
    # Variables are part of the definition, in any order.
    d1 = daemon.cli("env", "create", "web", "--pip-requirements", reqs, "--python", PY,
                    "--var", "A=1", "--var", "B=2", json=True).json
    d2 = daemon.cli("env", "create", "web", "--pip-requirements", reqs, "--python", PY,
                    "--var", "B=2", "--var", "A=1", json=True).json
    assert d1["version"] == 3 and d2["version"] == 3
    assert daemon.cli("env", "show", "web", json=True).json["version"] == 3
    assert daemon.cli("env", "show", "web:1", json=True).json["hash"] == a["hash"]
    text = daemon.cli("env", "show", "web:3").stdout
    assert "A=1" in text and "scikit-learn" in text
    # A deleted version's number is not given again.
    daemon.cli("env", "delete", "web:3")
    res = daemon.cli("env", "show", "web:3", check=False)
    assert res.rc != 0 and "no version 3" in res.stderr
    e = daemon.cli("env", "create", "web", "--pip-requirements", reqs, "--python", PY,
                   "--var", "A=1", json=True).json
    assert e["version"] == 4
    assert daemon.cli("env", "delete", "web", json=True).json["deleted"] == 3
    assert daemon.cli("env", "show", "web", check=False).rc != 0


def test_the_seeds_conda_file_without_conda_is_a_venv(daemon, tmp_path):
    if any(shutil.which(t) for t in ("conda", "mamba", "micromamba")):
        return  # a conda is installed: the file stays a conda environment
    e = daemon.cli("env", "create", "iris", "--conda-file", IRIS / "conda_dependencies.yml",
                   json=True).json
    d = e["definition"]
    assert e["kind"] == "venv"
    assert d["python_pin"] == "3.6.2"
    assert d["requirements"] == ["scikit-learn", "numpy"]
    assert d["skipped"] == ["azureml-defaults"]
    text = daemon.cli("env", "show", "iris").stdout
    assert "azureml-defaults" in text and "3.6.2" in text


def test_conda_yaml_is_parsed_for_real(daemon, tmp_path):
    f = tmp_path / "env.yml"
    f.write_text("name: demo\nchannels: [conda-forge]\ndependencies:\n"
                 "  - python=3.11\n  - numpy=1.26\n  - scikit-learn>=1.0\n  - pytorch\n"
                 "  - pip:\n    - joblib==1.3\n    - azureml-core\n")
    e = daemon.cli("env", "create", "demo", "--conda-file", f, json=True).json
    if e["kind"] == "venv":
        d = e["definition"]
        assert d["python_pin"] == "3.11"
        assert d["requirements"] == ["numpy==1.26", "scikit-learn>=1.0", "torch", "joblib==1.3"]
        assert d["skipped"] == ["azureml-core"]
    bad = tmp_path / "bad.yml"
    bad.write_text("dependencies:\n  - numpy\n   - scipy: [\n")
    res = daemon.cli("env", "create", "bad", "--conda-file", bad, check=False)
    assert res.rc != 0
    assert "bad.yml:3:" in res.stderr, res.stderr
    wrong = tmp_path / "wrong.yml"
    wrong.write_text("dependencies:\n  - numpy\n  - {conda: x}\n")
    res = daemon.cli("env", "create", "wrong", "--conda-file", wrong, check=False)
    assert res.rc != 0 and "wrong.yml:3:6" in res.stderr and "pip" in res.stderr, res.stderr
    res = daemon.cli("env", "create", "none", check=False)
    assert res.rc != 0


def test_run_in_the_sklearn_environment_trains_iris(daemon):
    res = daemon.cli("submit", "--experiment", "iris", "--source", IRIS, "--environment",
                     "sklearn", "--wait", "--show-output", "--", "train_iris.py",
                     timeout=300)
    assert "Accuracy" in res.stdout
    run = daemon.cli("show", "1", json=True).json
    assert run["status"] == "Completed"
    assert run["python"] == "/usr/bin/python3"
    assert run["properties"]["environment"] == "sklearn:1"
    assert len(run["properties"]["environment.hash"]) == 64


def test_run_takes_the_environments_interpreter_and_variables(daemon, make_tree):
    src = make_tree({"main.py": "import os, sys\nprint(sys.executable, os.environ['GREETING'],"
                                " os.environ['OTHER'])\n"})
    daemon.cli("env", "create", "greet", "--interpreter", PY, "--var", "GREETING=hello",
               "--var", "OTHER=env")
    r = daemon.cli("submit", "--source", src, "--environment", "greet:1", "--env", "OTHER=run",
                   "--", "main.py", json=True).json
    run = daemon.wait_terminal(r["id"])
    assert run["status"] == "Completed", run
    texts = [l["text"] for l in daemon.logs(r["id"])]
    assert texts == ["%s hello run" % PY], texts
    # Not both --python and --environment; unknown ones are named.
    res = daemon.cli("submit", "--source", src, "--environment", "greet", "--python", PY,
                     "--", "main.py", check=False)
    assert res.rc != 0 and "not both" in res.stderr
    res = daemon.cli("submit", "--source", src, "--environment", "nope", "--", "main.py",
                     check=False)
    assert res.rc != 0 and "no environment named 'nope'" in res.stderr


def venv_daemon_env():
    """Debian's interpreters first on the daemon's PATH (python3.11 for a pin)."""
    return {"PATH": "/usr/bin:/bin:" + os.environ.get("PATH", "")}


def builds(daemon, hash_=None):
    return [l for l in daemon.log_text().splitlines()
            if ": building (pid" in l and (hash_ is None or hash_[:12] in l)]


def test_venv_on_debian_python_with_satisfied_requirements(daemon_factory, tmp_path):
    d = daemon_factory(env=venv_daemon_env())
    reqs = tmp_path / "requirements.txt"
    reqs.write_text("scikit-learn\nnumpy\njoblib\n")
    e = d.cli("env", "create", "sk", "--pip-requirements", reqs, "--python", PY,
              "--system-site-packages", "--var", "PIP_NO_INDEX=1", json=True).json
    res = d.cli("submit", "--source", IRIS, "--environment", "sk", "--wait", "--json", "--",
                "train_iris.py", timeout=300, check=False)
    run = d.show("1")
    assert run["status"] == "Completed", (run, res)
    assert run["python"].endswith("/envs/%s/bin/python" % e["hash"])
    assert run["properties"]["environment.hash"] == e["hash"]
    assert len(builds(d, e["hash"])) == 1
    # A second run reuses the cache: no build at all.
    d.cli("submit", "--source", IRIS, "--environment", "sk", "--wait", "--",
          "train_iris.py", timeout=300)
    assert d.show("2")["status"] == "Completed"
    assert len(builds(d, e["hash"])) == 1


def make_wheel(where):
    """A tiny pure-Python wheel, rytiny 0.1, built by hand."""
    where.mkdir(parents=True, exist_ok=True)
    path = where / "rytiny-0.1-py3-none-any.whl"
    files = {
        "rytiny/__init__.py": "ANSWER = 42\n",
        "rytiny-0.1.dist-info/METADATA": "Metadata-Version: 2.1\nName: rytiny\nVersion: 0.1\n",
        "rytiny-0.1.dist-info/WHEEL": "Wheel-Version: 1.0\nGenerator: test\n"
                                      "Root-Is-Purelib: true\nTag: py3-none-any\n",
    }
    record = "".join("%s,,\n" % n for n in files) + "rytiny-0.1.dist-info/RECORD,,\n"
    with zipfile.ZipFile(path, "w") as z:
        for n, t in files.items():
            z.writestr(n, t)
        z.writestr("rytiny-0.1.dist-info/RECORD", record)
    return where


def test_venv_installs_a_local_wheel(daemon_factory, tmp_path, make_tree):
    d = daemon_factory(env=venv_daemon_env())
    links = make_wheel(tmp_path / "wheels")
    reqs = tmp_path / "requirements.txt"
    reqs.write_text("rytiny==0.1\n")
    d.cli("env", "create", "tiny", "--pip-requirements", reqs, "--python", PY,
          "--var", "PIP_FIND_LINKS=%s" % links, "--var", "PIP_NO_INDEX=1")
    src = make_tree({"main.py": "import rytiny, sys\nprint('answer', rytiny.ANSWER, sys.prefix)\n"})
    r = d.cli("submit", "--source", src, "--environment", "tiny", "--", "main.py",
              json=True).json
    run = d.wait_terminal(r["id"], timeout=300)
    assert run["status"] == "Completed", run
    texts = [l["text"] for l in d.logs(r["id"], stream="stdout")]
    assert texts[0].startswith("answer 42 ") and "/envs/" in texts[0], texts


def test_seed_conda_file_as_written_fails_with_the_pin(daemon_factory):
    if any(shutil.which(t) for t in ("conda", "mamba", "micromamba")):
        return
    d = daemon_factory(env=venv_daemon_env())
    d.cli("env", "create", "iris", "--conda-file", IRIS / "conda_dependencies.yml")
    r = d.cli("submit", "--source", IRIS, "--environment", "iris", "--", "train_iris.py",
              json=True).json
    run = d.wait_terminal(r["id"], timeout=300)
    assert run["status"] == "Failed"
    err = run["error"]
    assert err["code"] == "PreparationFailed" and err["stage"] == "Preparing", err
    assert "python=3.6.2" in err["message"] and "micromamba" in err["message"], err
    assert "change the pin" in err["message"], err


def test_seed_conda_file_with_the_local_pin_runs_iris(daemon_factory, tmp_path):
    if any(shutil.which(t) for t in ("conda", "mamba", "micromamba")):
        return
    d = daemon_factory(env=venv_daemon_env())
    import subprocess
    here = subprocess.run([PY, "-c", "import sys; print('%d.%d' % sys.version_info[:2])"],
                          capture_output=True, text=True).stdout.strip()
    f = tmp_path / "conda_dependencies.yml"
    f.write_text((IRIS / "conda_dependencies.yml").read_text().replace("3.6.2", here))
    d.cli("env", "create", "iris", "--conda-file", f, "--system-site-packages",
          "--var", "PIP_NO_INDEX=1")
    res = d.cli("submit", "--source", IRIS, "--environment", "iris", "--wait",
                "--show-output", "--", "train_iris.py", timeout=300, check=False)
    run = d.show("1")
    assert run["status"] == "Completed", (run, res)
    assert "Accuracy" in res.stdout
    log = open(d.state_dir / "envs" / (run["properties"]["environment.hash"] + ".log")).read()
    assert "skipping azureml-defaults" in log


def test_ten_runs_share_one_new_environment_and_one_build(daemon_factory, tmp_path,
                                                          make_tree):
    d = daemon_factory(env=venv_daemon_env(), max_runs=10)
    reqs = tmp_path / "requirements.txt"
    reqs.write_text("joblib\n")
    e = d.cli("env", "create", "shared", "--pip-requirements", reqs, "--python", PY,
              "--system-site-packages", "--var", "PIP_NO_INDEX=1", json=True).json
    src = make_tree({"main.py": "import joblib, sys\nprint(sys.prefix)\n"})
    ids = [d.cli("submit", "--source", src, "--environment", "shared", "--", "main.py",
                 json=True).json["id"] for _ in range(10)]
    for i in ids:
        run = d.wait_terminal(i, timeout=300)
        assert run["status"] == "Completed", run
    assert len(builds(d, e["hash"])) == 1, builds(d)


def test_broken_requirement_fails_fast_with_the_cause(daemon_factory, tmp_path, make_tree):
    d = daemon_factory(env=venv_daemon_env())
    reqs = tmp_path / "requirements.txt"
    reqs.write_text("no-such-package-runyard-test==9.9\n")
    e = d.cli("env", "create", "broken", "--pip-requirements", reqs, "--python", PY,
              "--system-site-packages", "--var", "PIP_NO_INDEX=1", json=True).json
    src = make_tree({"main.py": "print('never')\n"})
    r = d.cli("submit", "--source", src, "--environment", "broken", "--", "main.py",
              json=True).json
    run = d.wait_terminal(r["id"], timeout=120)
    assert run["status"] == "Failed"
    assert run["error"]["code"] == "PreparationFailed", run["error"]
    assert "no-such-package-runyard-test" in run["error"]["message"], run["error"]
    # Not cached: the next run builds again (and fails again).
    assert not (d.state_dir / "envs" / e["hash"]).exists()
    r2 = d.cli("submit", "--source", src, "--environment", "broken", "--", "main.py",
               json=True).json
    assert d.wait_terminal(r2["id"], timeout=120)["status"] == "Failed"
    assert len(builds(d, e["hash"])) == 2


def test_list_shows_builds_and_prune_keeps_the_recent_ones(daemon_factory, tmp_path,
                                                           make_tree):
    d = daemon_factory(env=venv_daemon_env())
    src = make_tree({"main.py": "print('ok')\n"})
    hashes = []
    for i in range(3):
        reqs = tmp_path / ("r%d.txt" % i)
        reqs.write_text("")
        e = d.cli("env", "create", "p%d" % i, "--pip-requirements", reqs, "--python", PY,
                  "--system-site-packages", "--var", "N=%d" % i, json=True).json
        hashes.append(e["hash"])
        r = d.cli("submit", "--source", src, "--environment", "p%d" % i, "--", "main.py",
                  json=True).json
        assert d.wait_terminal(r["id"], timeout=300)["status"] == "Completed"
    envs = {e["name"]: e for e in d.cli("env", "list", json=True).json["environments"]}
    assert envs["p0"]["build"]["size"] > 0 and envs["p0"]["build"]["last_used"]
    assert "build" not in envs["system"]
    assert "LAST USED" in d.cli("env", "list").stdout
    # Use p0 again: p1 is now the least recently used.
    r = d.cli("submit", "--source", src, "--environment", "p0", "--", "main.py",
              json=True).json
    assert d.wait_terminal(r["id"], timeout=300)["status"] == "Completed"
    res = d.cli("env", "prune", "--keep", "2", json=True).json
    assert res["pruned"] == [hashes[1]], res
    assert not (d.state_dir / "envs" / hashes[1]).exists()
    assert d.cli("env", "show", "p1", json=True).json["build"] is None
    # A pruned environment is built again when a run needs it.
    r = d.cli("submit", "--source", src, "--environment", "p1", "--", "main.py",
              json=True).json
    assert d.wait_terminal(r["id"], timeout=300)["status"] == "Completed"
    assert len(builds(d, hashes[1])) == 2
    assert "Pruned 3 builds" in d.cli("env", "prune", "--keep", "0").stdout


def test_daemon_stopped_during_a_build_builds_again_at_start(daemon_factory, tmp_path,
                                                             make_tree):
    d = daemon_factory(env=venv_daemon_env())
    reqs = tmp_path / "requirements.txt"
    reqs.write_text("joblib\n")
    e = d.cli("env", "create", "slow", "--pip-requirements", reqs, "--python", PY,
              "--system-site-packages", "--var", "PIP_NO_INDEX=1", json=True).json
    src = make_tree({"main.py": "print('ok')\n"})
    r = d.cli("submit", "--source", src, "--environment", "slow", "--", "main.py",
              json=True).json
    d.wait_status(r["id"], "Preparing", "Scaling", "Running", "Completed")
    d.restart()
    run = d.wait_terminal(r["id"], timeout=300)
    assert run["status"] == "Completed", run
    assert (d.state_dir / "envs" / e["hash"] / ".ready").exists()


def test_run_file_names_an_environment(daemon, make_tree):
    import json
    src = make_tree({"main.py": "import os, sys\nprint(sys.executable, os.environ['GREETING'])\n"})
    daemon.cli("env", "create", "greet", "--interpreter", PY, "--var", "GREETING=from-env")
    (src / "run.json").write_text(json.dumps(
        {"command": ["main.py"], "environment": "greet:1", "experiment": "files"}))
    r = daemon.cli("submit", "-f", src / "run.json", json=True).json
    run = daemon.wait_terminal(r["id"])
    assert run["status"] == "Completed", run
    assert [l["text"] for l in daemon.logs(r["id"])] == ["%s from-env" % PY]
    assert daemon.show(r["id"])["properties"]["environment"] == "greet:1"
    # A flag replaces the file's choice of interpreter, either way.
    r = daemon.cli("submit", "-f", src / "run.json", "--python", PY, json=True).json
    run = daemon.show(r["id"])
    assert "environment" not in run.get("properties", {}), run
    (src / "py.json").write_text(json.dumps({"command": ["main.py"], "python": "/nonexistent"}))
    r = daemon.cli("submit", "-f", src / "py.json", "--environment", "greet", json=True).json
    assert daemon.wait_terminal(r["id"])["status"] == "Completed"
    # Both in one file is refused by the daemon; a wrong type or an unknown
    # environment names the problem.
    (src / "both.json").write_text(json.dumps(
        {"command": ["main.py"], "environment": "greet", "python": PY}))
    res = daemon.cli("submit", "-f", src / "both.json", check=False)
    assert res.rc == 2 and "not both" in res.stderr, res
    (src / "bad.json").write_text(json.dumps({"command": ["main.py"], "environment": 3}))
    res = daemon.cli("submit", "-f", src / "bad.json", check=False)
    assert res.rc == 1 and "key 'environment'" in res.stderr, res
    (src / "nope.json").write_text(json.dumps({"command": ["main.py"], "environment": "nope"}))
    res = daemon.cli("submit", "-f", src / "nope.json", check=False)
    assert res.rc == 2 and "no environment named 'nope'" in res.stderr, res
