"""The output of building an environment in the logs of the runs that wait
for it, on the stream `environment` (docs/environments.md): every waiting
run gets every line, live while the build runs; a run that finds the build
cached gets none. Offline: the venvs see Debian's site-packages.
"""

import os

from conftest import PY, wait_for


def venv_daemon_env():
    """Debian's interpreters first on the daemon's PATH."""
    return {"PATH": "/usr/bin:/bin:" + os.environ.get("PATH", "")}


def builds(daemon, hash_):
    return [l for l in daemon.log_text().splitlines()
            if ": building (pid" in l and hash_[:12] in l]


def make_env(d, tmp_path, name, reqs="joblib\n", extra=()):
    f = tmp_path / (name + ".txt")
    f.write_text(reqs)
    return d.cli("env", "create", name, "--pip-requirements", f, "--python", PY,
                 "--system-site-packages", "--var", "PIP_NO_INDEX=1", *extra, json=True).json


def test_ten_runs_each_get_the_builds_lines_and_one_build_happens(daemon_factory, tmp_path,
                                                                 make_tree):
    d = daemon_factory(env=venv_daemon_env(), max_runs=10)
    e = make_env(d, tmp_path, "shared")
    src = make_tree({"main.py": "import joblib\nprint('ran')\n"})
    ids = [d.cli("submit", "--source", src, "--environment", "shared", "--", "main.py",
                 json=True).json["id"] for _ in range(10)]
    for i in ids:
        run = d.wait_terminal(i, timeout=300)
        assert run["status"] == "Completed", run
    assert len(builds(d, e["hash"])) == 1, d.log_text()
    build_log = (d.state_dir / "envs" / (e["hash"] + ".log")).read_text().splitlines()
    assert any("pip install of 1 requirement(s)" in l for l in build_log), build_log
    for i in ids:
        lines = d.logs(i)
        env = [l["text"] for l in lines if l["stream"] == "environment"]
        assert env == build_log, (i, env, build_log)
        # The build's lines come before the program's, in one sequence.
        streams = [l["stream"] for l in lines]
        assert streams == ["environment"] * len(env) + ["stdout"], streams
        assert [l["seq"] for l in lines] == list(range(1, len(lines) + 1))
        assert [l["text"] for l in d.logs(i, stream="environment")] == env
        assert [l["text"] for l in d.logs(i, stream="stdout")] == ["ran"]


def test_lines_arrive_while_the_build_runs(daemon_factory, tmp_path, make_tree):
    d = daemon_factory(env=venv_daemon_env())
    e = make_env(d, tmp_path, "live")
    ready = d.state_dir / "envs" / e["hash"] / ".ready"
    src = make_tree({"main.py": "print('ran')\n"})
    r = d.cli("submit", "--source", src, "--environment", "live", "--", "main.py",
              json=True).json
    # venv's ensurepip alone takes seconds: the first lines are stored
    # while the run still waits in Preparing and nothing is built yet.
    seen = wait_for(lambda: [l for l in d.logs(r["id"], stream="environment")
                             if not ready.exists() and d.status(r["id"]) == "Preparing"],
                    timeout=120, what="environment lines during the build")
    assert "-m venv" in seen[0]["text"], seen
    assert d.wait_terminal(r["id"], timeout=300)["status"] == "Completed"


def test_the_cli_shows_them_prefixed_and_filters_them(daemon_factory, tmp_path, make_tree):
    d = daemon_factory(env=venv_daemon_env())
    e = make_env(d, tmp_path, "shown")
    src = make_tree({"main.py": "print('program output')\n"})
    res = d.cli("submit", "--source", src, "--environment", "shown", "--wait",
                "--show-output", "--", "main.py", timeout=300)
    out = res.stdout.splitlines()
    assert "[environment] runyard: pip install of 1 requirement(s)" in out, res.stdout
    assert "program output" in out
    assert out.index("program output") > max(
        i for i, l in enumerate(out) if l.startswith("[environment] "))
    logs = d.cli("logs", "1").stdout.splitlines()
    assert logs[-1] == "program output" and logs[0].startswith("[environment] "), logs
    only = d.cli("logs", "1", "--stream", "environment").stdout.splitlines()
    assert only and all(l.startswith("[environment] ") for l in only), only
    assert d.cli("logs", "1", "--stream", "stdout").stdout == "program output\n"
    follow = d.cli("logs", "1", "-f").stdout.splitlines()
    assert follow == logs
    js = d.cli("logs", "1", "--stream", "environment", json=True).json
    assert js and all(l["stream"] == "environment" for l in js)
    res = d.cli("logs", "1", "--stream", "bogus", check=False)
    assert res.rc == 1 and "environment" in res.stderr
    # A run that finds the build cached has no environment lines.
    d.cli("submit", "--source", src, "--environment", "shown", "--wait", "--", "main.py",
          timeout=300)
    assert d.cli("logs", "2").stdout == "program output\n"
    assert d.logs("2", stream="environment") == []
    assert len(builds(d, e["hash"])) == 1


def test_a_failed_builds_lines_are_in_the_failed_runs_log(daemon_factory, tmp_path,
                                                          make_tree):
    d = daemon_factory(env=venv_daemon_env())
    make_env(d, tmp_path, "broken", reqs="no-such-package-runyard-test==9.9\n")
    src = make_tree({"main.py": "print('never')\n"})
    r = d.cli("submit", "--source", src, "--environment", "broken", "--", "main.py",
              json=True).json
    run = d.wait_terminal(r["id"], timeout=120)
    assert run["status"] == "Failed" and run["error"]["code"] == "PreparationFailed"
    env = [l["text"] for l in d.logs(r["id"], stream="environment")]
    assert any("no-such-package-runyard-test" in l for l in env), env
    assert d.logs(r["id"], stream="stdout") == []


def test_interpreter_environments_have_no_environment_lines(daemon, make_tree):
    src = make_tree({"main.py": "print('plain')\n"})
    r = daemon.cli("submit", "--source", src, "--environment", "sklearn", "--", "main.py",
                   json=True).json
    assert daemon.wait_terminal(r["id"])["status"] == "Completed"
    assert [l["stream"] for l in daemon.logs(r["id"])] == ["stdout"]
