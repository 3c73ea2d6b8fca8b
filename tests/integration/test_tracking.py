"""Metrics, tags, properties and files from inside a run (issue 4).

A run writes through <run dir>/tracking.jsonl, which the daemon tails into
the store; questions go over the socket with the run's token. The runs here
use the real run-side module (runyard, azureml.core) that the daemon puts
first on their PYTHONPATH."""

import base64
import json
import os
import subprocess

import pytest

import ryclient
from conftest import PY, REPO, WAIT_FILE, script, wait_for


def metrics(d, run):
    """{name: summary} of a run."""
    return {m["name"]: m for m in d.rpc("run.metrics", {"run": run})["metrics"]}


def points(d, run, name):
    """Every point of a series, through run.metrics pages."""
    out, after = [], 0
    while True:
        page = d.rpc("run.metrics", {"run": run, "name": name, "after": after, "limit": 1000})
        out += page["points"]
        if not page["more"]:
            return out
        after = page["next"]


def values(d, run, name):
    return [p["value"] for p in points(d, run, name)]


def run_script(d, make_tree, body, *args, name="job.py", files=None, **opts):
    """Submit a script and wait for it to end; returns the final run."""
    src = make_tree(dict({name: body}, **(files or {})), name="src-%s" % name.replace(".", "-"))
    sub = d.submit(src, name, *args, **opts)
    return d.wait_terminal(sub["id"])


def last_json_line(d, run):
    """The last stdout line of a run that parses as JSON."""
    for line in reversed(d.logs(run, stream="stdout")):
        try:
            return json.loads(line["text"])
        except ValueError:
            continue
    raise AssertionError("no JSON line in the output of %s:\n%s"
                         % (run, "\n".join(l["text"] for l in d.logs(run))))


# -- the seed's script, unmodified ---------------------------------------------------


def test_iris_script_runs_unmodified_and_its_metrics_are_stored(daemon, tmp_path):
    src = REPO / "examples" / "iris"
    text = (src / "train_iris.py").read_text()
    assert "from azureml.core.run import Run" in text and "ImportError" not in text
    sub = daemon.submit(src, "train_iris.py", "--kernel", "linear", "--penalty", "1.0",
                        experiment="iris")
    run = daemon.wait_terminal(sub["id"])
    assert run["status"] == "Completed", (run, daemon.logs(sub["id"]))

    m = metrics(daemon, sub["id"])
    assert list(m) == ["Kernel type", "Penalty", "Accuracy"]
    assert m["Kernel type"]["last"] == "linear"
    assert m["Penalty"]["last"] == 1.0
    assert 0.9 < m["Accuracy"]["last"] <= 1.0
    assert all(x["count"] == 1 and x["kind"] == "scalar" for x in m.values())
    assert run["warnings"] == []

    arts = {a["path"] for a in daemon.rpc("run.outputs", {"run": sub["id"]})["artifacts"]}
    assert "outputs/model.joblib" in arts
    texts = [l["text"] for l in daemon.logs(sub["id"])]
    assert any(t.startswith("Accuracy of SVM classifier on test set: ") for t in texts)

    # And through the CLI, as the README shows it.
    table = daemon.cli("metrics", str(run["seq"])).stdout
    for name in ("Kernel type", "Penalty", "Accuracy", "linear", "0.973684"):
        assert name in table, table
    doc = daemon.cli("metrics", sub["id"], json=True).json
    assert [x["name"] for x in doc["metrics"]] == ["Kernel type", "Penalty", "Accuracy"]


def test_iris_script_offline_prints_its_metrics(tmp_path):
    env = dict(os.environ, PYTHONPATH=str(REPO / "sdk" / "python"))
    for k in ("RUNYARD_RUN_ID", "RUNYARD_TRACKING_FILE", "RUNYARD_RUN_TOKEN"):
        env.pop(k, None)
    proc = subprocess.run([PY, str(REPO / "examples" / "iris" / "train_iris.py"),
                           "--kernel", "rbf", "--penalty", "0.5"],
                          cwd=tmp_path, env=env, capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr
    out = proc.stdout.splitlines()
    i = out.index("Attempted to log scalar metric Kernel type:")
    assert out[i + 1] == "rbf"
    i = out.index("Attempted to log scalar metric Penalty:")
    assert out[i + 1] == "0.5"
    i = out.index("Attempted to log scalar metric Accuracy:")
    assert 0.5 < float(out[i + 1]) <= 1.0
    assert (tmp_path / "outputs" / "model.joblib").exists()


# -- the run's world -----------------------------------------------------------------------


def test_run_environment_has_token_tracking_file_and_pythonpath(daemon, make_tree):
    body = script("""
        import json, os, sys
        print(json.dumps({k: os.environ.get(k) for k in (
            "RUNYARD_RUN_TOKEN", "RUNYARD_TRACKING_FILE", "PYTHONPATH", "RUNYARD_RUN_ID")}
            | {"cwd": os.getcwd(), "path0": [p for p in sys.path if p][:2]}))
    """)
    run = run_script(daemon, make_tree, body, env={"PYTHONPATH": "/opt/mine"})
    assert run["status"] == "Completed", run
    env = last_json_line(daemon, run["id"])
    assert len(env["RUNYARD_RUN_TOKEN"]) == 32
    int(env["RUNYARD_RUN_TOKEN"], 16)
    run_dir = os.path.dirname(env["cwd"])
    assert env["RUNYARD_TRACKING_FILE"] == os.path.join(run_dir, "tracking.jsonl")
    sdk = str(REPO / "sdk" / "python")
    assert env["PYTHONPATH"] == sdk + ":/opt/mine"
    assert sdk in env["path0"]

    # Another run gets another token.
    other = run_script(daemon, make_tree, body, name="job2.py")
    assert last_json_line(daemon, other["id"])["RUNYARD_RUN_TOKEN"] != env["RUNYARD_RUN_TOKEN"]


# -- shapes -------------------------------------------------------------------------------------


SHAPES = script("""
    import io, json, math, os, sys
    import runyard
    from azureml.core import Run
    run = Run.get_context()
    assert run is runyard.get_run()
    for i in range(5):
        run.log("loss", 1.0 / (i + 1))
    run.log("note", "hello")
    run.log("flag", True)
    run.log("odd", float("nan"))
    run.log("odd", float("inf"))
    run.log("stepped", 7, step=100)
    run.log("stepped", 8, step=200)
    run.log_list("lst", [1, 2.5, "three"])
    run.log_row("rows", epoch=1, acc=0.5)
    run.log_row("rows", epoch=2, acc=0.75)
    run.log_table("tbl", {"x": [1, 2, 3], "y": ["a", "b", "c"]})
    with open("pic.png", "wb") as f:
        f.write(b"\\x89PNG fake image")
    run.log_image("picture", path="pic.png")
    with open("notes.txt", "w") as f:
        f.write("uploaded content\\n")
    run.upload_file("outputs/extra/notes.txt", "notes.txt")
    run.upload_file("streamed.txt", io.BytesIO(b"from a stream"))
    os.makedirs("folder/sub", exist_ok=True)
    open("folder/a.txt", "w").write("A")
    open("folder/sub/b.txt", "w").write("B")
    run.upload_folder("up", "folder")
    # Edits after the upload do not change what was uploaded.
    open("notes.txt", "w").write("changed\\n")
    run.tag("stage", "test")
    run.set_tags({"a": "1", "b": 2})
    run.remove_tags(["b"])
    run.add_properties({"p": "one"})
    # Read back at once: the daemon stores what was written before it answers.
    print(json.dumps({"metrics": run.get_metrics(), "tags": run.get_tags(),
                      "properties": run.get_properties(), "status": run.get_status(),
                      "loss": run.get_metrics("loss"), "none": run.get_metrics("nope"),
                      "id": run.id, "experiment": run.experiment.name}))
""")


def test_metric_shapes_files_tags_and_properties(daemon, make_tree):
    run = run_script(daemon, make_tree, SHAPES, experiment="shapes")
    assert run["status"] == "Completed", daemon.logs(run["id"])
    rid = run["id"]
    assert run["warnings"] == [], run["warnings"]
    m = metrics(daemon, rid)
    assert {k: v["kind"] for k, v in m.items()} == {
        "loss": "scalar", "note": "scalar", "flag": "scalar", "odd": "scalar",
        "stepped": "scalar", "lst": "list", "rows": "row", "tbl": "table", "picture": "image"}

    assert values(daemon, rid, "loss") == [1.0, 0.5, 1 / 3, 0.25, 0.2]
    assert [p["step"] for p in points(daemon, rid, "loss")] == [0, 1, 2, 3, 4]
    assert m["loss"]["min"] == 0.2 and m["loss"]["max"] == 1.0 and m["loss"]["count"] == 5
    assert m["loss"]["last"] == 0.2 and m["loss"]["last_step"] == 4
    assert values(daemon, rid, "note") == ["hello"] and m["note"]["min"] is None
    assert values(daemon, rid, "flag") == [1]
    assert values(daemon, rid, "odd") == ["NaN", "Infinity"]
    assert [(p["step"], p["value"]) for p in points(daemon, rid, "stepped")] == [(100, 7), (200, 8)]
    assert values(daemon, rid, "lst") == [[1, 2.5, "three"]]
    assert values(daemon, rid, "rows") == [{"epoch": 1, "acc": 0.5}, {"epoch": 2, "acc": 0.75}]
    assert values(daemon, rid, "tbl") == [{"x": [1, 2, 3], "y": ["a", "b", "c"]}]
    image = values(daemon, rid, "picture")[0]["path"]
    assert image.startswith("images/picture-") and image.endswith(".png")

    arts = {a["path"]: a for a in daemon.rpc("run.outputs", {"run": rid})["artifacts"]}

    def content(path):
        return base64.b64decode(daemon.rpc("artifact.read", {"run": rid, "path": path})["data"])

    assert content("outputs/extra/notes.txt") == b"uploaded content\n"
    assert content("streamed.txt") == b"from a stream"
    assert content("up/a.txt") == b"A" and content("up/sub/b.txt") == b"B"
    assert content(image) == b"\x89PNG fake image"
    assert image in arts

    assert run["tags"] == {"stage": "test", "a": "1"}
    assert run["properties"] == {"p": "one"}

    seen = last_json_line(daemon, rid)
    assert seen["status"] == "Running"
    assert seen["tags"] == {"stage": "test", "a": "1"} and seen["properties"] == {"p": "one"}
    assert seen["id"] == rid and seen["experiment"] == "shapes"
    got = seen["metrics"]
    assert got["loss"] == [1.0, 0.5, 1 / 3, 0.25, 0.2]
    assert got["note"] == "hello"
    assert got["lst"] == [1, 2.5, "three"]
    assert got["rows"] == {"epoch": [1, 2], "acc": [0.5, 0.75]}
    assert got["tbl"] == {"x": [1, 2, 3], "y": ["a", "b", "c"]}
    assert got["picture"] == image
    assert seen["loss"] == {"loss": [1.0, 0.5, 1 / 3, 0.25, 0.2]}
    assert seen["none"] == {}

    # Points appear in `runyard metrics NAME` in order.
    out = daemon.cli("metrics", rid, "rows").stdout
    assert '"epoch":1' in out and '"epoch":2' in out


# -- flushing ----------------------------------------------------------------------------------


@pytest.mark.parametrize("ending,status", [
    ("sys.exit(3)", "Failed"),
    ("raise RuntimeError('boom')", "Failed"),
    ("pass", "Completed"),
])
def test_everything_logged_is_flushed_at_exit(daemon, make_tree, ending, status):
    body = script("""
        import sys
        from azureml.core.run import Run
        run = Run.get_context()
        for i in range(2500):
            run.log("i", i)
        run.log_list("last", [1, 2])
        run.tag("ended", "yes")
        %s
    """ % ending)
    run = run_script(daemon, make_tree, body)
    assert run["status"] == status, run
    assert values(daemon, run["id"], "i") == list(range(2500))
    assert values(daemon, run["id"], "last") == [[1, 2]]
    assert run["tags"] == {"ended": "yes"}


def test_multiprocessing_workers_points_are_kept(daemon, make_tree):
    body = script("""
        import multiprocessing as mp
        import runyard

        def work(k):
            run = runyard.get_run()
            for i in range(100):
                run.log("worker%d" % k, i)

        if __name__ == "__main__":
            run = runyard.get_run()
            run.log("main", 1)
            for method in ("fork", "spawn"):
                ctx = mp.get_context(method)
                procs = [ctx.Process(target=work, args=(k if method == "fork" else k + 10,))
                         for k in range(3)]
                for p in procs:
                    p.start()
                for p in procs:
                    p.join()
    """)
    run = run_script(daemon, make_tree, body)
    assert run["status"] == "Completed", daemon.logs(run["id"])
    for k in (0, 1, 2, 10, 11, 12):
        assert values(daemon, run["id"], "worker%d" % k) == list(range(100)), k
    assert values(daemon, run["id"], "main") == [1]


def test_forked_child_does_not_repeat_the_parents_points(daemon, make_tree):
    body = script("""
        import os, sys
        import runyard
        run = runyard.get_run()
        for i in range(100):
            run.log("parent", i)
        pid = os.fork()
        if pid == 0:
            for i in range(10):
                run.log("child", i)
            sys.exit(0)
        os.waitpid(pid, 0)
        for i in range(100, 150):
            run.log("parent", i)
    """)
    run = run_script(daemon, make_tree, body)
    assert run["status"] == "Completed", daemon.logs(run["id"])
    assert values(daemon, run["id"], "parent") == list(range(150))
    assert values(daemon, run["id"], "child") == list(range(10))


# -- limits ------------------------------------------------------------------------------------


LIMITS = script("""
    import json
    from azureml.core.run import Run
    from runyard import LimitError, ConflictError
    run = Run.get_context()
    results = {}
    def attempt(label, fn):
        try:
            fn()
            results[label] = "ok"
        except Exception as e:
            results[label] = "%s: %s" % (type(e).__name__, e)
    attempt("name255", lambda: run.log("n" * 255, 1))
    attempt("name256", lambda: run.log("n" * 256, 1))
    attempt("name_empty", lambda: run.log("", 1))
    attempt("column256", lambda: run.log_row("r", **{"c" * 256: 1}))
    attempt("value_type", lambda: run.log("v", {"a": 1}))
    attempt("key101", lambda: run.tag("k" * 101, "v"))
    attempt("tagvalue1001", lambda: run.tag("k", "v" * 1001))
    attempt("tagvalue1000", lambda: run.tag("long", "v" * 1000))
    for i in range(49):
        run.tag("t%d" % i, str(i))
    attempt("tag51", lambda: run.tag("one-too-many", "x"))
    attempt("tag_update", lambda: run.tag("t0", "changed"))
    attempt("prop", lambda: run.add_properties({"p": "1"}))
    attempt("prop_same", lambda: run.add_properties({"p": "1"}))
    attempt("prop_change", lambda: run.add_properties({"p": "2"}))
    attempt("propkey101", lambda: run.add_properties({"k" * 101: "v"}))
    attempt("propvalue1001", lambda: run.add_properties({"q": "v" * 1001}))
    for i in range(49):
        run.add_properties({"p%d" % i: str(i)})
    attempt("prop51", lambda: run.add_properties({"one-too-many": "x"}))
    attempt("big_list", lambda: run.log_list("big", ["x" * 1000] * 2000))
    print(json.dumps(results))
""")


def test_limits_raise_clear_errors_in_the_script(daemon, make_tree):
    run = run_script(daemon, make_tree, LIMITS)
    assert run["status"] == "Completed", daemon.logs(run["id"])
    res = last_json_line(daemon, run["id"])
    assert res["name255"] == "ok"
    assert res["name256"].startswith("LimitError") and "the limit is 255" in res["name256"]
    assert res["name_empty"].startswith("LimitError") and "empty" in res["name_empty"]
    assert res["column256"].startswith("LimitError") and "column name" in res["column256"]
    assert res["value_type"].startswith("TypeError") and "number or a string" in res["value_type"]
    assert res["key101"].startswith("LimitError") and "the limit is 100" in res["key101"]
    assert res["tagvalue1001"].startswith("LimitError") and "the limit is 1000" in res["tagvalue1001"]
    assert res["tagvalue1000"] == "ok"
    assert res["tag51"].startswith("LimitError") and "at most 50 tags" in res["tag51"]
    assert res["tag_update"] == "ok"
    assert res["prop"] == "ok" and res["prop_same"] == "ok"
    assert res["prop_change"].startswith("ConflictError") and "cannot change" in res["prop_change"]
    assert res["propkey101"].startswith("LimitError")
    assert res["propvalue1001"].startswith("LimitError")
    assert res["prop51"].startswith("LimitError") and "at most 50 properties" in res["prop51"]
    assert res["big_list"].startswith("LimitError") and "bytes" in res["big_list"]

    # What was accepted is stored, and nothing was refused by the daemon.
    assert run["warnings"] == []
    assert len(run["tags"]) == 50 and run["tags"]["t0"] == "changed"
    assert len(run["properties"]) == 50 and run["properties"]["p"] == "1"
    assert "n" * 255 in metrics(daemon, run["id"])


RAW = script("""
    import json, os
    path = os.environ["RUNYARD_TRACKING_FILE"]
    good = lambda name: json.dumps({"op": "metric", "name": name, "values": [1], "ts": 1.0})
    lines = [
        "this is not json",
        good("ok1"),
        json.dumps({"op": "metric", "name": "n" * 256, "values": [1], "ts": 1.0}),
        json.dumps({"op": "tag", "key": "k" * 101, "value": "v"}),
        json.dumps({"op": "property", "key": "p", "value": "first"}),
        json.dumps({"op": "property", "key": "p", "value": "second"}),
        json.dumps({"op": "metric", "kind": "list", "name": "ok1", "values": [[1]], "ts": 1.0}),
        json.dumps({"op": "upload", "name": "../../escape", "file": "x"}),
        json.dumps({"op": "upload", "name": "missing.txt", "file": "not-there"}),
        json.dumps({"op": "metric", "name": "huge", "values": ["x" * (1 << 20)], "ts": 1.0}),
        good("ok2"),
    ] + [json.dumps({"op": "tag", "key": "t%d" % i, "value": "v"}) for i in range(51)]
    data = "\\n".join(lines).encode() + b"\\n" + b'{"op":"tag","key":"\\xff","value":"v"}\\n'
    data += (good("ok3") + "\\n").encode()
    fd = os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT)
    os.write(fd, data)
    os.close(fd)
""")


def test_daemon_skips_bad_lines_with_warnings(daemon, make_tree):
    run = run_script(daemon, make_tree, RAW)
    assert run["status"] == "Completed", daemon.logs(run["id"])
    m = metrics(daemon, run["id"])
    assert set(m) == {"ok1", "ok2", "ok3"}
    assert run["properties"] == {"p": "first"}
    assert len(run["tags"]) == 50 and "t50" not in run["tags"]
    warnings = [w["message"] for w in run["warnings"]]
    want = ["not a JSON object", "the limit is 255", "the limit is 100", "cannot change",
            "logged as a scalar before", "relative path", "missing.txt",
            "longer than 1 MiB", "already has 50 tags", "not valid UTF-8"]
    assert len(warnings) == len(want), warnings
    for w, text in zip(warnings, want):
        assert text in w and w.startswith("tracking.jsonl line at byte "), (w, text)

    out = daemon.cli("show", run["id"]).stdout
    assert "Warnings:" in out and "not a JSON object" in out


def test_cli_tag_limits_and_property_immutability(daemon, make_tree):
    run = run_script(daemon, make_tree, "print('hi')\n")
    rid = run["id"]
    res = daemon.cli("tag", rid, "k" * 101 + "=v", check=2)
    assert "InvalidArgument" in res.stderr and "1 to 100 characters" in res.stderr
    res = daemon.cli("tag", rid, "k=" + "v" * 1001, check=2)
    assert "the limit is 1000" in res.stderr
    daemon.cli("tag", rid, *["t%d=%d" % (i, i) for i in range(50)])
    res = daemon.cli("tag", rid, "one=more", check=2)
    assert "TooLarge" in res.stderr and "50 tags" in res.stderr
    assert len(daemon.show(rid)["tags"]) == 50
    daemon.cli("tag", rid, "--remove", "t0", "one=more")
    daemon.cli("tag", rid, "--property", "p=1")
    daemon.cli("tag", rid, "--property", "p=1")  # the same value again is fine
    res = daemon.cli("tag", rid, "--property", "p=2", "t1=changed", check=2)
    assert "Conflict" in res.stderr and "cannot change" in res.stderr
    after = daemon.show(rid)
    assert after["properties"] == {"p": "1"}
    assert after["tags"]["t1"] == "1"  # nothing of a refused call was applied
    assert "t0" not in after["tags"] and after["tags"]["one"] == "more"
    res = daemon.cli("tag", rid, "novalue", check=1)
    assert "KEY=VALUE" in res.stderr


# -- crashes -----------------------------------------------------------------------------------


CONTINUOUS = WAIT_FILE + script("""
    import sys, time
    from azureml.core.run import Run
    run = Run.get_context()
    n, half, resume = int(sys.argv[1]), sys.argv[2], sys.argv[3]
    for i in range(n):
        run.log("step", i)
        if i % 7 == 0:
            run.log_row("rows", i=i)
        if i == n // 2:
            open(half, "w").close()
            wait_file(resume)
        time.sleep(0.0005)
""")


def test_metrics_survive_daemon_kill9(daemon, make_tree, ext):
    n = 6000
    half, resume = ext / "half", ext / "resume"
    src = make_tree({"cont.py": CONTINUOUS})
    sub = daemon.submit(src, "cont.py", n, half, resume)
    rid = sub["id"]
    wait_for(lambda: metrics(daemon, rid).get("step", {}).get("count", 0) > 500,
             what="points stored while the run logs")
    daemon.kill9()
    # The run goes on logging while the daemon is down.
    wait_for(half.exists, what="the run to log half of its points")
    daemon.start()
    wait_for(lambda: metrics(daemon, rid).get("step", {}).get("count", 0) > n // 2,
             what="the points logged while the daemon was down")
    daemon.kill9()
    resume.write_text("")
    daemon.start()
    run = daemon.wait_terminal(rid)
    assert run["status"] == "Completed", run
    got = values(daemon, rid, "step")
    assert len(got) == n and got == list(range(n)), (len(got), len(set(got)))
    assert [p["step"] for p in points(daemon, rid, "step")] == list(range(n))
    assert values(daemon, rid, "rows") == [{"i": i} for i in range(0, n, 7)]
    assert run["warnings"] == []


# -- tokens ------------------------------------------------------------------------------------


HOLD = WAIT_FILE + script("""
    import os, sys
    import runyard
    run = runyard.get_run()
    run.log("mine", 1)
    run.tag("owner", os.environ["RUNYARD_RUN_ID"])
    print("TOKEN " + os.environ["RUNYARD_RUN_TOKEN"])
    wait_file(sys.argv[1])
""")


def test_a_token_acts_on_its_own_run_only(daemon, make_tree, ext):
    go = ext / "go"
    src = make_tree({"hold.py": HOLD})
    a = daemon.submit(src, "hold.py", go)["id"]
    b = daemon.submit(src, "hold.py", go)["id"]

    def token(run):
        lines = [l["text"] for l in daemon.logs(run) if l["text"].startswith("TOKEN ")]
        return lines[0].split()[1] if lines else None

    tok_a = wait_for(lambda: token(a), what="run A's token")
    tok_b = wait_for(lambda: token(b), what="run B's token")
    assert tok_a != tok_b
    # Tags travel through the run's buffered tracking file: wait for both.
    wait_for(lambda: daemon.show(a)["tags"].get("owner") == a, what="run A's tag")
    wait_for(lambda: daemon.show(b)["tags"].get("owner") == b, what="run B's tag")
    seq_b = daemon.show(b)["seq"]

    with daemon.client() as c:
        # Its own run, named or not.
        ctx = c.call("run.context", {"token": tok_a})
        assert ctx["id"] == a and ctx["status"] == "Running"
        assert ctx["tags"] == {"owner": a}
        assert c.call("run.context", {"token": tok_a, "run": a})["id"] == a
        assert "mine" in {m["name"] for m in c.call("run.metrics", {"token": tok_a})["metrics"]}
        assert c.call("run.tag", {"token": tok_a, "tags": {"x": "y"}})["tags"]["x"] == "y"

        # Any other run, by id, by number or unknown: refused.
        for op, args in [
            ("run.context", {"run": b}),
            ("run.metrics", {"run": b}),
            ("run.metrics", {"run": seq_b, "name": "mine"}),
            ("run.metrics", {"run": "#%d" % seq_b}),
            ("run.tag", {"run": b, "tags": {"owner": "A was here"}}),
            ("run.tag", {"run": b, "properties": {"p": "A"}}),
            ("run.context", {"run": "no-such-run"}),
        ]:
            with pytest.raises(ryclient.ProtocolError) as e:
                c.call(op, dict(args, token=tok_a))
            assert e.value.code == "PermissionDenied", (op, args, e.value)
            assert "its own run" in e.value.message

        # A token that is no run's.
        with pytest.raises(ryclient.ProtocolError) as e:
            c.call("run.metrics", {"token": "0" * 32, "run": a})
        assert e.value.code == "PermissionDenied"
        with pytest.raises(ryclient.ProtocolError) as e:
            c.call("run.context", {"token": 17})
        assert e.value.code == "InvalidArgument"

    after = daemon.show(b)
    assert after["tags"] == {"owner": b} and after["properties"] == {}
    go.write_text("")
    assert daemon.wait_terminal(a)["status"] == "Completed"
    assert daemon.wait_terminal(b)["status"] == "Completed"


# -- the CLI -----------------------------------------------------------------------------------


TRAIN = script("""
    import sys
    import runyard
    run = runyard.get_run()
    lr = float(sys.argv[1])
    for epoch in range(20):
        run.log("loss", 1.0 / (1 + lr * epoch))
    run.log("lr", lr)
    run.tag("lr", str(lr))
""")


def test_cli_metrics_compare_tag_and_show(daemon, make_tree):
    src = make_tree({"train.py": TRAIN})
    r1 = daemon.wait_terminal(daemon.submit(src, "train.py", "0.5")["id"])
    r2 = daemon.wait_terminal(daemon.submit(src, "train.py", "2")["id"])
    assert r1["status"] == r2["status"] == "Completed"

    out = daemon.cli("metrics", "1").stdout.splitlines()
    assert out[0].split() == ["NAME", "LAST", "MIN", "MAX", "COUNT"]
    loss = next(l for l in out if l.startswith("loss")).split()
    assert loss == ["loss", "%.6g" % (1 / 10.5), "%.6g" % (1 / 10.5), "1", "20"]
    out = daemon.cli("metrics", "1", "loss").stdout.splitlines()
    assert out[0].split() == ["STEP", "TIME", "VALUE"] and len(out) == 21
    assert out[1].split()[0] == "0" and out[1].split()[-1] == "1"
    pts = daemon.cli("metrics", "1", "loss", json=True).json
    assert [p["step"] for p in pts] == list(range(20))
    res = daemon.cli("metrics", "1", "nope", check=2)
    assert "NotFound" in res.stderr and "no metric 'nope'" in res.stderr
    assert daemon.cli("metrics", "99", check=2).rc == 2

    out = daemon.cli("compare", "1", "2").stdout
    assert "#1" in out and "#2" in out and "Completed" in out
    row = next(l for l in out.splitlines() if l.startswith("lr "))
    assert row.split() == ["lr", "0.5", "2"]
    assert "TAG" in out
    doc = daemon.cli("compare", "1", "2", json=True).json
    assert [r["seq"] for r in doc["runs"]] == [1, 2]
    assert doc["runs"][1]["tags"] == {"lr": "2.0"}
    assert {m["name"] for m in doc["runs"][0]["metrics"]} == {"loss", "lr"}
    assert daemon.cli("compare", "1", check=1).rc == 1

    doc = daemon.cli("tag", "1", "best=yes", "--property", "reviewed=alice", json=True).json
    assert doc["tags"] == {"lr": "0.5", "best": "yes"}
    assert doc["properties"] == {"reviewed": "alice"}
    out = daemon.cli("show", "1").stdout
    assert "Tags:" in out and "best=yes" in out and "reviewed=alice" in out
    daemon.cli("tag", "1", "--remove", "best")
    assert "best" not in daemon.show(1)["tags"]
    shown = daemon.cli("show", "1", json=True).json
    assert shown["tags"] == {"lr": "0.5"} and shown["warnings"] == []


def test_metrics_of_a_run_that_logged_nothing(daemon, make_tree):
    run = run_script(daemon, make_tree, "print('quiet')\n")
    assert daemon.cli("metrics", run["id"]).stdout.strip() == "No metrics."
    assert daemon.cli("metrics", run["id"], json=True).json["metrics"] == []


def test_a_run_has_at_most_10000_metrics(daemon, make_tree):
    body = script("""
        import runyard
        run = runyard.get_run()
        for i in range(10001):
            run.log("m%d" % i, i)
        run.log("m0", -1)
    """)
    run = run_script(daemon, make_tree, body)
    assert run["status"] == "Completed", run
    m = metrics(daemon, run["id"])
    assert len(m) == 10000 and "m10000" not in m
    assert values(daemon, run["id"], "m0") == [0, -1]
    warnings = [w["message"] for w in run["warnings"]]
    assert len(warnings) == 1 and "metric 'm10000': the run already has 10000 metrics" in warnings[0]


def test_log_image_of_a_matplotlib_figure(daemon, make_tree):
    if subprocess.run([PY, "-c", "import matplotlib"], capture_output=True).returncode != 0:
        pytest.skip("matplotlib is not installed for %s" % PY)
    body = script("""
        import matplotlib
        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
        from azureml.core.run import Run
        run = Run.get_context()
        fig = plt.figure()
        plt.plot([1, 2, 3], [3, 1, 2])
        run.log_image("curve", plot=fig)
        run.log_image("current", plot=plt)
        for i in range(3000):
            run.log_row("many", i=i)
    """)
    run = run_script(daemon, make_tree, body)
    assert run["status"] == "Completed", daemon.logs(run["id"])
    paths = [v["path"] for v in values(daemon, run["id"], "curve") + values(daemon, run["id"], "current")]
    assert len(paths) == 2
    for path in paths:
        data = base64.b64decode(daemon.rpc("artifact.read", {"run": run["id"], "path": path})["data"])
        assert data.startswith(b"\x89PNG"), path
    assert values(daemon, run["id"], "many") == [{"i": i} for i in range(3000)]
