"""runyard sweep through the CLI: submit (flags and a sweep file), list, show, explain,
cancel, runs --parent, and show of a sweep.

The runs are a tiny script that logs one metric through the run-side module
(runyard.get_run().log), as test_tracking.py's scripts do."""

import json
import time

from conftest import DEADLINE, PY, TERMINAL, script, wait_for

TRAIN = script("""
    import argparse, runyard
    p = argparse.ArgumentParser()
    p.add_argument("--x", type=float)
    p.add_argument("--y")
    a = p.parse_args()
    run = runyard.get_run()
    for i in range(3):
        run.log("acc", a.x * (i + 1) + (1 if a.y == "b" else 0))
""")

# Runs until told to stop: for a sweep to cancel while it runs.
SLOW = script("""
    import argparse, time, runyard
    p = argparse.ArgumentParser()
    p.add_argument("--x", type=float)
    a = p.parse_args()
    run = runyard.get_run()
    for i in range(600):
        run.log("loss", a.x / (i + 1))
        time.sleep(0.2)
""")

GRID = ["--metric", "acc", "--goal", "maximize", "--sampling", "grid",
        "--param", "--x=choice(1, 2)", "--param", "--y=choice('a', 'b')"]


def sweep_show(d, sweep):
    return d.cli("sweep", "show", sweep, json=True).json


def wait_sweep(d, sweep, timeout=DEADLINE):
    """Poll 'sweep show --json' until the sweep's status is terminal."""
    def ended():
        doc = sweep_show(d, sweep)
        return doc if doc["status"] in TERMINAL else None
    return wait_for(ended, timeout=timeout, interval=0.2, what="sweep %s to end" % sweep)


def submit_grid(d, src, *extra):
    res = d.cli("sweep", "submit", "--source", src, "--python", PY, "--experiment", "grid",
                *GRID, *extra, "--", "train.py", json=True)
    return res.json


def test_grid_sweep_submit_show_list_and_children(daemon, make_tree):
    src = make_tree({"train.py": TRAIN})
    # The one-line summary, without --json.
    res = daemon.cli("sweep", "submit", "--source", src, "--python", PY, "--experiment", "grid",
                     *GRID, "--", "train.py")
    line = res.stdout.strip()
    assert line.startswith("Submitted sweep #"), res
    assert "(experiment grid): maximize acc, grid over 2 parameters, 4 trials" in line, line
    seq = line.split()[2].lstrip("#")
    sweep_id = line.split()[3]

    doc = wait_sweep(daemon, sweep_id)
    assert doc["status"] == "Completed", doc
    assert doc["id"] == sweep_id and str(doc["seq"]) == seq
    assert doc["trials"] == 4 and doc["counts"]["Completed"] == 4
    best = doc["best"]
    assert best["value"] == 7 and best["arguments"] == ["--x", "2", "--y", "b"], best

    # runs --parent lists exactly the children, by id or by number.
    children = daemon.cli("runs", "--parent", sweep_id, json=True).json["runs"]
    assert len(children) == 4
    assert all(r["parent"] == sweep_id and r["kind"] == "run" for r in children)
    assert sorted(r["command"][1:] for r in children) == sorted(
        ["--x", x, "--y", y] for x in ("1", "2") for y in ("a", "b"))
    by_seq = daemon.cli("runs", "--parent", seq, json=True).json["runs"]
    assert [r["id"] for r in by_seq] == [r["id"] for r in children]
    table = daemon.cli("runs", "--parent", sweep_id).stdout
    assert table.splitlines()[0].split()[:3] == ["#", "ID", "KIND"], table
    assert len(table.splitlines()) == 5 and sweep_id not in table

    # The whole list marks the sweep and its trials.
    table = daemon.cli("runs").stdout
    row = [l for l in table.splitlines() if sweep_id in l]
    assert len(row) == 1 and row[0].split()[2] == "sweep", table
    assert table.count("trial of #%s" % seq) == 4, table

    # sweep show for people: definition, counts, best.
    text = daemon.cli("sweep", "show", sweep_id).stdout
    for want in ("Sweep:      %s (#%s)" % (sweep_id, seq), "Status:     Completed",
                 "Program:    train.py", "Metric:     maximize acc", "Sampling:   grid, seed ",
                 "Params:     --x = choice(1, 2)", "            --y = choice('a', 'b')",
                 "Limits:     at most 4 trials, 4 at a time", "Policy:     none",
                 "Trials:     4 of 4: 4 Completed", "Best:       #%d %s: 7 (Completed)"
                 % (best["seq"], best["id"]), "--x 2 --y b", "Decisions:  none"):
        assert want in text, (want, text)

    # show of the sweep's run adds the summary; show of a child names its sweep.
    text = daemon.cli("show", sweep_id).stdout
    assert "Kind:       sweep" in text and "Trials:     4 of 4: 4 Completed" in text, text
    assert "Best:       #%d" % best["seq"] in text
    text = daemon.cli("show", best["id"]).stdout
    assert "Sweep:      %s" % sweep_id in text, text

    # sweep list: a row with trials/max_total and the best value.
    listed = daemon.cli("sweep", "list", json=True).json["sweeps"]
    assert [s["id"] for s in listed] == [sweep_id]
    table = daemon.cli("sweep", "list", "--experiment", "grid").stdout
    header, row = table.splitlines()
    assert header.split() == ["#", "ID", "EXPERIMENT", "STATUS", "TRIALS", "METRIC", "BEST",
                              "CREATED"]
    assert row.split()[:7] == [seq, sweep_id, "grid", "Completed", "4/4", "acc", "(max)"], row
    assert row.split()[7] == "7", row
    assert daemon.cli("sweep", "list", "--experiment", "nothing").stdout == "No sweeps.\n"

    # explain: a line per child, no decisions without a policy.
    text = daemon.cli("sweep", "explain", sweep_id).stdout
    assert "No early-termination decisions." in text
    assert text.count("Completed") == 4 and "--x=2 --y=b" in text, text
    ex = daemon.cli("sweep", "explain", sweep_id, json=True).json
    assert len(ex["children"]) == 4 and ex["decisions"] == []


def test_sweep_file_with_flags_over_it(daemon, make_tree, tmp_path):
    src = make_tree({"train.py": TRAIN}, name="proj/src")
    f = tmp_path / "proj" / "sweep.json"
    f.write_text(json.dumps({
        "metric": "acc", "goal": "minimize", "sampling": "grid",
        "params": {"--x": "choice(1, 2, 3)", "--y": "choice('a')"},
        "command": ["train.py"], "source": "src", "python": PY, "experiment": "fromfile",
    }))
    # Run from elsewhere: source is relative to the file's directory.
    res = daemon.cli("sweep", "submit", "-f", f, "--goal", "maximize",
                     "--param", "--y=choice('b')", "--experiment", "flags", json=True,
                     cwd=str(tmp_path))
    doc = res.json
    assert doc["experiment"] == "flags"
    d = doc["sweep"]
    assert d["goal"] == "maximize" and d["max_total"] == 3
    assert list(d["params"].items()) == [("--x", "choice(1, 2, 3)"), ("--y", "choice('b')")]
    assert src.exists()
    done = wait_sweep(daemon, doc["id"])
    assert done["status"] == "Completed" and done["best"]["value"] == 10, done


def test_policy_decisions_are_shown_and_explained(daemon, make_tree):
    src = make_tree({"slow.py": SLOW})
    doc = daemon.cli("sweep", "submit", "--source", src, "--python", PY, "--metric", "loss",
                     "--goal", "minimize", "--param", "--x=choice(1, 50, 60, 70)",
                     "--sampling", "grid", "--max-concurrent", "4",
                     "--policy", "median,delay_evaluation=3", "--", "slow.py", json=True).json
    sweep = doc["id"]
    assert doc["sweep"]["policy"]["name"] == "median"
    # Wait for a decision, then stop the rest.
    wait_for(lambda: sweep_show(daemon, sweep)["decisions"], interval=0.2,
             what="an early-termination decision of %s" % sweep)
    shown = sweep_show(daemon, sweep)
    dec = shown["decisions"][0]
    text = daemon.cli("sweep", "show", sweep).stdout
    assert "Policy:     median (" in text and "delay_evaluation=3" in text, text
    assert "#%d" % dec["child_seq"] in text and dec["message"] in text, text

    text = daemon.cli("sweep", "explain", sweep).stdout
    assert "Decision 1: run #%d %s at interval %d (median)" % (
        dec["child_seq"], dec["child"], dec["interval"]) in text, text
    assert "  message:  %s" % dec["message"] in text
    assert "  detail:   " in text and "rule=median" in text
    if shown["status"] not in TERMINAL:
        daemon.cli("sweep", "cancel", sweep, check=False)
    wait_sweep(daemon, sweep)


def test_cancel_a_running_sweep(daemon, make_tree):
    src = make_tree({"slow.py": SLOW})
    doc = daemon.cli("sweep", "submit", "--source", src, "--python", PY, "--metric", "loss",
                     "--goal", "minimize", "--param", "--x=uniform(1, 10)", "--max-total", "6",
                     "--max-concurrent", "2", "--seed", "7", "--", "slow.py", json=True).json
    sweep = doc["id"]
    assert doc["sweep"]["seed"] == 7 and doc["sweep"]["max_concurrent"] == 2
    wait_for(lambda: sweep_show(daemon, sweep)["counts"]["Running"] == 2, interval=0.2,
             what="two trials of %s running" % sweep)
    res = daemon.cli("sweep", "cancel", sweep)
    assert res.stdout.startswith("Sweep #%d %s canceled (2 runs stopped)" % (doc["seq"], sweep)), res
    done = wait_sweep(daemon, sweep)
    assert done["status"] == "Canceled", done
    assert done["trials"] == 2 and done["counts"]["Canceled"] == 2, done
    for child in daemon.cli("runs", "--parent", sweep, json=True).json["runs"]:
        assert child["status"] == "Canceled"
        assert child["error"]["code"] == "SweepCanceled", child
    # Once ended: refused, exit 2.
    again = daemon.cli("sweep", "cancel", sweep, check=2)
    assert "(Conflict)" in again.stderr, again


def test_sweep_verbs_refuse_what_is_not_a_sweep(daemon, make_tree):
    src = make_tree({"train.py": TRAIN})
    run = daemon.submit(src, "train.py", "--x", "1")
    daemon.wait_terminal(run["id"])
    for verb in ("show", "explain", "cancel"):
        res = daemon.cli("sweep", verb, run["id"], check=2)
        assert "(NotFound)" in res.stderr, res
    # The daemon refuses a bad expression: exit 2 with its message.
    res = daemon.cli("sweep", "submit", "--source", src, "--python", PY, "--metric", "acc",
                     "--goal", "maximize", "--param", "--x=nonsense(1)", "--max-total", "2",
                     "--", "train.py", check=2)
    assert "(InvalidArgument)" in res.stderr, res
    # A dry run takes nothing and starts nothing.
    res = daemon.cli("sweep", "submit", "--source", src, "--dry-run", *GRID, "--", "train.py")
    assert "nothing was stored" in res.stdout, res
    time.sleep(0.2)
    assert daemon.cli("sweep", "list", json=True).json["sweeps"] == []
