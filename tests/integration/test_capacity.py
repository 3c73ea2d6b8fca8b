"""Capacity (--max-runs) and priority order."""

import time

from conftest import WAIT_FILE, parse_ts

BLOCKER = WAIT_FILE + "import sys\nprint('blocking')\nwait_file(sys.argv[1])\n"


def test_max_runs_keeps_the_second_run_queued(daemon_factory, make_tree, ext):
    d = daemon_factory(max_runs=1)
    go = ext / "go"
    src = make_tree({"block.py": BLOCKER, "quick.py": "print('quick')\n"})
    first = d.submit(src, "block.py", str(go))
    d.wait_status(first["id"], "Running")
    second = d.submit(src, "quick.py")
    # While the first one runs, the second stays Queued (checked over a while).
    for _ in range(10):
        assert d.status(second["id"]) == "Queued"
        time.sleep(0.1)
    assert d.status(first["id"]) == "Running"
    assert d.rpc("daemon.status")["counts"].get("Queued") == 1

    go.write_text("")
    a = d.wait_terminal(first["id"])
    b = d.wait_terminal(second["id"])
    assert a["status"] == b["status"] == "Completed"
    # The second one started only after the first one's process had ended.
    assert parse_ts(b["transitions"]["Running"]) >= parse_ts(a["transitions"]["Finalizing"])


def test_queued_runs_start_by_priority_then_submit_order(daemon_factory, make_tree, ext):
    d = daemon_factory(max_runs=1)
    go = ext / "go"
    src = make_tree({"block.py": BLOCKER, "quick.py": "import sys\nprint(sys.argv[1])\n"})
    blocker = d.submit(src, "block.py", str(go))
    d.wait_status(blocker["id"], "Running")
    queued = {}
    for name, prio in (("low-a", 0), ("high", 10), ("low-b", 0), ("mid", 5), ("neg", -3)):
        queued[name] = d.submit(src, "quick.py", name, priority=prio)["id"]
    for rid in queued.values():
        assert d.status(rid) == "Queued"

    go.write_text("")
    started = {}
    for name, rid in queued.items():
        run = d.wait_terminal(rid)
        assert run["status"] == "Completed", run
        assert run["priority"] == {"low-a": 0, "high": 10, "low-b": 0, "mid": 5, "neg": -3}[name]
        started[name] = parse_ts(run["transitions"]["Running"])
    order = sorted(started, key=started.get)
    assert order == ["high", "mid", "low-a", "low-b", "neg"], order
