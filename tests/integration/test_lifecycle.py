"""A run's life: statuses, transitions, exit status, timeouts, wait."""

import json
import os
import time

from conftest import DEADLINE, ORDER, PY, WAIT_FILE, parse_ts


def test_lifecycle_transitions_in_order(daemon, make_tree):
    src = make_tree({"hello.py": "print('hello from the run')\n"})
    sub = daemon.submit(src, "hello.py", experiment="life")
    assert sub["status"] == "Queued"
    assert sub["experiment"] == "life"
    assert sub["id"].startswith("life_")
    assert isinstance(sub["seq"], int) and sub["seq"] >= 1
    assert sub["snapshot"] and sub["files"] == 1

    daemon.cli("wait", sub["id"])
    run = daemon.cli("show", sub["id"], json=True).json
    assert run["status"] == "Completed", run
    assert run["error"] is None
    assert run["exit_code"] == 0
    assert run["command"] == ["hello.py"]
    assert run["python"] == PY
    assert run["log_lines"] == 1
    assert run["usage"] is not None
    assert run["duration"] is not None and run["duration"] >= 0

    tr = run["transitions"]
    expected = ["Queued", "Preparing", "Scaling", "Running", "Finalizing", "Completed"]
    assert [s for s in expected if tr.get(s)] == expected, tr
    times = [parse_ts(tr[s]) for s in expected]
    assert times == sorted(times), "transition timestamps go backwards: %s" % tr
    assert parse_ts(run["created_at"]) <= parse_ts(run["started_at"]) <= parse_ts(run["ended_at"])
    assert parse_ts(run["started_at"]) == parse_ts(tr["Running"])


def test_statuses_are_seen_in_order_while_running(daemon, make_tree, ext):
    go = ext / "go"
    src = make_tree({"w.py": WAIT_FILE + "print('started')\nimport sys\nwait_file(sys.argv[1])\n"})
    sub = daemon.submit(src, "w.py", str(go))
    seen = []
    run = daemon.wait_status(sub["id"], "Running")
    seen.append(run["status"])
    go.write_text("")
    while run["status"] not in ("Completed", "Failed", "Canceled"):
        run = daemon.show(sub["id"])
        if run["status"] != seen[-1]:
            seen.append(run["status"])
        time.sleep(0.01)
    assert run["status"] == "Completed"
    assert [ORDER.index(s) for s in seen] == sorted(ORDER.index(s) for s in seen), seen


def test_run_addressed_by_id_and_sequence_number(daemon, make_tree):
    src = make_tree({"a.py": "print(1)\n"})
    sub = daemon.submit(src, "a.py")
    daemon.wait_terminal(sub["id"])
    for ref in (sub["id"], str(sub["seq"]), "#%d" % sub["seq"]):
        assert daemon.cli("show", ref, json=True).json["id"] == sub["id"]


def test_nonzero_exit_fails_with_user_error(daemon, make_tree):
    src = make_tree({"bad.py": "import sys\nprint('about to fail')\nsys.exit(3)\n"})
    sub = daemon.submit(src, "bad.py")
    run = daemon.wait_terminal(sub["id"])
    assert run["status"] == "Failed"
    assert run["exit_code"] == 3
    assert run["error"]["code"] == "UserError"
    assert run["error"]["stage"] == "Running"
    assert run["error"]["message"]
    assert "Completed" not in run["transitions"] or not run["transitions"]["Completed"]


def test_timeout_fails_the_run(daemon, make_tree):
    src = make_tree({"slow.py": "import time\nprint('sleeping')\ntime.sleep(600)\n"})
    t0 = time.monotonic()
    sub = daemon.submit(src, "slow.py", timeout=1)
    run = daemon.wait_terminal(sub["id"])
    assert run["status"] == "Failed", run
    assert run["error"]["code"] == "Timeout"
    assert run["error"]["stage"] == "Running"
    assert time.monotonic() - t0 < DEADLINE, "the timeout did not stop the run"
    assert run["timeout"] == 1


def test_wait_exit_codes(daemon, make_tree):
    src = make_tree({"ok.py": "print('ok')\n", "bad.py": "raise SystemExit(1)\n"})
    good = daemon.submit(src, "ok.py")
    bad = daemon.submit(src, "bad.py")
    res = daemon.cli("wait", good["id"], json=True)
    assert res.json["id"] == good["id"] and res.json["status"] == "Completed"
    res = daemon.cli("wait", bad["id"], json=True, check=2)
    assert res.rc == 2
    # The run is terminal already: wait returns at once with the same outcome.
    daemon.cli("wait", str(good["seq"]))
    daemon.cli("wait", str(bad["seq"]), check=2)


def test_submit_wait_show_output_streams_and_summarises(daemon, make_tree):
    src = make_tree({"p.py": "for i in range(5):\n    print('line-%d' % i)\n"})
    res = daemon.cli("submit", "--source", src, "--python", PY, "--wait", "--show-output",
                     "--", "p.py")
    for i in range(5):
        assert "line-%d" % i in res.stdout
    assert "Completed" in res.stdout + res.stderr


def test_submit_wait_failed_run_exits_2(daemon, make_tree):
    src = make_tree({"bad.py": "raise SystemExit(4)\n"})
    daemon.cli("submit", "--source", src, "--python", PY, "--wait", "--", "bad.py", check=2)


def test_runs_and_experiments_list(daemon, make_tree):
    src = make_tree({"a.py": "print(1)\n"})
    a = daemon.submit(src, "a.py", experiment="alpha")
    b = daemon.submit(src, "a.py", experiment="beta")
    c = daemon.submit(src, "a.py", experiment="beta")
    for r in (a, b, c):
        daemon.wait_terminal(r["id"])
    runs = daemon.cli("runs", json=True).json["runs"]
    assert [r["id"] for r in runs] == [c["id"], b["id"], a["id"]], "newest first"
    beta = daemon.cli("runs", "--experiment", "beta", json=True).json["runs"]
    assert {r["id"] for r in beta} == {b["id"], c["id"]}
    assert len(daemon.cli("runs", "--limit", "1", json=True).json["runs"]) == 1
    done = daemon.cli("runs", "--status", "Completed", json=True).json["runs"]
    assert len(done) == 3
    exps = daemon.cli("experiments", json=True).json["experiments"]
    assert [(e["name"], e["runs"]) for e in exps] == [("alpha", 1), ("beta", 2)]



def test_submit_from_a_run_file(daemon, make_tree):
    src = make_tree({
        "train.py": "import os, sys\nprint(os.environ['LR'], os.environ['EPOCHS'], *sys.argv[1:])\n",
        "run.json": json.dumps({
            "command": ["train.py", "--from-file"], "experiment": "fromfile", "python": PY,
            "env": {"LR": "0.1", "EPOCHS": "3"}, "priority": 7,
        }),
    })
    # source defaults to the file's directory; --env merges into the file's env.
    a = daemon.cli("submit", "-f", src / "run.json", "--env", "EPOCHS=5", json=True).json
    run = daemon.wait_terminal(a["id"])
    assert run["status"] == "Completed", run
    assert run["experiment"] == "fromfile" and run["priority"] == 7
    assert os.path.realpath(run["source"]) == os.path.realpath(src)
    assert [l["text"] for l in daemon.logs(a["id"])] == ["0.1 5 --from-file"]
    # Flags override the file; PROGRAM ARGS replace its command.
    b = daemon.cli("submit", "-f", src / "run.json", "--experiment", "override",
                   "--", "train.py", "--from-cli", json=True).json
    assert b["experiment"] == "override"
    daemon.wait_terminal(b["id"])
    assert [l["text"] for l in daemon.logs(b["id"])] == ["0.1 3 --from-cli"]


def test_wait_timeout_gives_up_with_exit_1(daemon, make_tree, ext):
    src = make_tree({"w.py": WAIT_FILE + "import sys\nwait_file(sys.argv[1])\n"})
    sub = daemon.submit(src, "w.py", str(ext / "go"))
    daemon.cli("wait", sub["id"], "--timeout", "0.5", check=1)
    assert daemon.status(sub["id"]) not in ("Completed", "Failed", "Canceled")
    (ext / "go").write_text("")
    daemon.cli("wait", sub["id"])
