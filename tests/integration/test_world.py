"""The run's world: working directory, ./outputs and ./logs, environment, programs."""

import json
import os

from conftest import script

SHOW_WORLD = script("""
    import json, os
    print(json.dumps({
        "cwd": os.getcwd(),
        "files": sorted(os.listdir(".")),
        "outputs": os.path.isdir("outputs"),
        "logs": os.path.isdir("logs"),
        "env": {k: os.environ.get(k) for k in (
            "RUNYARD_RUN_ID", "RUNYARD_EXPERIMENT", "RUNYARD_SOCKET", "PYTHONUNBUFFERED",
            "FOO", "EMPTY", "WITH_EQUALS")},
    }))
""")


def test_run_world_env_cwd_and_dirs(daemon, make_tree):
    src = make_tree({"world.py": SHOW_WORLD, "data/x.txt": "x\n"})
    sub = daemon.submit(src, "world.py", experiment="world",
                        env={"FOO": "bar baz", "EMPTY": "", "WITH_EQUALS": "a=b"})
    run = daemon.wait_terminal(sub["id"])
    assert run["status"] == "Completed", run
    assert run["env"] == {"FOO": "bar baz", "EMPTY": "", "WITH_EQUALS": "a=b"}
    world = json.loads(daemon.logs(sub["id"])[0]["text"])
    env = world["env"]
    assert env["RUNYARD_RUN_ID"] == sub["id"]
    assert env["RUNYARD_EXPERIMENT"] == "world"
    assert os.path.realpath(env["RUNYARD_SOCKET"]) == os.path.realpath(daemon.socket)
    assert env["PYTHONUNBUFFERED"] == "1"
    assert env["FOO"] == "bar baz" and env["EMPTY"] == "" and env["WITH_EQUALS"] == "a=b"
    assert world["outputs"] and world["logs"]
    assert {"world.py", "data", "outputs", "logs"} <= set(world["files"])
    # The working directory is the run's own, under the state directory, not the source.
    assert os.path.realpath(world["cwd"]).startswith(os.path.realpath(daemon.state_dir) + "/")


def test_program_inside_the_snapshot_that_is_not_python(daemon, make_tree):
    src = make_tree({"run.sh": "#!/bin/sh\necho \"shell says $1 from $(basename \"$PWD\")\"\n"})
    sub = daemon.submit(src, "run.sh", "hello")
    run = daemon.wait_terminal(sub["id"])
    assert run["status"] == "Completed", run
    assert daemon.logs(sub["id"])[0]["text"].startswith("shell says hello")


def test_program_in_a_subdirectory_of_the_snapshot(daemon, make_tree):
    src = make_tree({"bin/tool.sh": "#!/bin/sh\necho tool ran\n", "pkg/main.py": "print('py ran')\n"})
    a = daemon.submit(src, "bin/tool.sh")
    b = daemon.submit(src, "pkg/main.py")
    for r, text in ((a, "tool ran"), (b, "py ran")):
        assert daemon.wait_terminal(r["id"])["status"] == "Completed"
        assert [l["text"] for l in daemon.logs(r["id"])] == [text]


def test_program_from_path(daemon, make_tree):
    src = make_tree({"unrelated.txt": "x\n"})
    sub = daemon.submit(src, "echo", "hello", "from", "PATH")
    run = daemon.wait_terminal(sub["id"])
    assert run["status"] == "Completed", run
    assert [l["text"] for l in daemon.logs(sub["id"])] == ["hello from PATH"]


def test_python_program_uses_the_given_interpreter(daemon, make_tree):
    src = make_tree({"which.py": "import sys\nprint(sys.executable)\n"})
    sub = daemon.submit(src, "which.py")
    assert daemon.wait_terminal(sub["id"])["status"] == "Completed"
    assert daemon.logs(sub["id"])[0]["text"] == "/usr/bin/python3"


def test_working_directory_removed_unless_kept(daemon, make_tree):
    src = make_tree({"where.py": "import os\nprint(os.getcwd())\n"})
    gone = daemon.submit(src, "where.py")
    kept = daemon.submit(src, "where.py", keep=True)
    for r in (gone, kept):
        assert daemon.wait_terminal(r["id"])["status"] == "Completed"
    assert not os.path.exists(daemon.logs(gone["id"])[0]["text"])
    assert os.path.isdir(daemon.logs(kept["id"])[0]["text"])
