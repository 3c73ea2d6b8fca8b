"""Datasets (docs/inputs.md): register from files, directories and URLs,
versions per name, contents pinned by hash at registration, list, show,
download and delete with --json, runs consuming dataset:NAME[:VERSION] and
recording the version they used (kept after the version is deleted), mounted
datasets read-only, the azureml.core Dataset shim, and bad input refused
with nothing changed."""

import hashlib
import json
import os
import subprocess

import pytest

from conftest import PY, REPO, script
import ryclient

SDK = REPO / "sdk" / "python"

LISTER = script("""
    import os, sys
    p = os.environ["RUNYARD_INPUT_" + sys.argv[1]]
    for root, dirs, files in sorted(os.walk(p)):
        for f in sorted(files):
            q = os.path.join(root, f)
            print("FILE %s %s" % (os.path.relpath(q, p), open(q).read().strip()))
    if len(sys.argv) > 2:
        try:
            open(os.path.join(p, "new"), "w").write("x")
            print("WRITABLE")
        except OSError as e:
            print("ERR %d" % e.errno)
""")


def sha(data):
    return hashlib.sha256(data).hexdigest()


def register(daemon, name, *sources, desc=None):
    args = ["dataset", "register", name, *sources]
    if desc:
        args += ["--description", desc]
    return daemon.cli(*args, json=True).json


def test_datasets_register_list_show_versions(daemon, make_tree, tmp_path):
    d = make_tree({"a.csv": "1,2\n", "sub/b.csv": "3,4\n"}, name="iris")
    extra = tmp_path / "labels.txt"
    extra.write_text("setosa\n")
    v1 = register(daemon, "iris", d, desc="the iris data")
    assert v1["id"] == "iris:1" and v1["version"] == 1 and v1["files"] == 2
    assert v1["description"] == "the iris data" and len(v1["manifest"]) == 64
    assert v1["sources"] == [str(d)]
    v2 = register(daemon, "iris", d, extra)
    assert v2["version"] == 2 and v2["files"] == 3
    # pinned: a change to the source after registering does not reach it
    (d / "a.csv").write_text("changed\n")
    show = daemon.cli("dataset", "show", "iris:1", json=True).json
    files = {f["path"]: f for f in show["file_list"]}
    assert files["a.csv"]["sha256"] == sha(b"1,2\n") and "sub/b.csv" in files
    latest = daemon.cli("dataset", "show", "iris", json=True).json
    assert latest["version"] == 2 and "labels.txt" in [f["path"] for f in latest["file_list"]]
    lst = daemon.cli("dataset", "list", json=True).json["datasets"]
    assert [(x["name"], x["version"]) for x in lst] == [("iris", 1), ("iris", 2)]
    assert daemon.cli("dataset", "list", "other", json=True).json["datasets"] == []
    text = daemon.cli("dataset", "list").stdout
    assert "iris" in text and "the iris data" in text
    text = daemon.cli("dataset", "show", "iris:1").stdout
    assert "Dataset iris:1" in text and "a.csv" in text
    # the same contents again make a new version with the same manifest
    v3 = register(daemon, "iris", tmp_path / "labels.txt")
    assert v3["version"] == 3 and v3["files"] == 1


def test_datasets_download_and_delete(daemon, make_tree, tmp_path):
    d = make_tree({"a.csv": "1,2\n", "sub/b.csv": "3,4\n"}, name="ds")
    register(daemon, "mine", d)
    register(daemon, "mine", d)
    out = tmp_path / "out"
    res = daemon.cli("dataset", "download", "mine:1", "-o", out, json=True).json
    assert res["dataset"] == "mine:1"
    assert (out / "a.csv").read_text() == "1,2\n" and (out / "sub" / "b.csv").exists()
    # never over an existing tree
    res = daemon.cli("dataset", "download", "mine:1", "-o", out, check=2)
    assert "not empty" in res.stderr and "Conflict" in res.stderr
    res = daemon.cli("dataset", "delete", "mine:1", json=True).json
    assert res["deleted"] == [1]
    daemon.cli("dataset", "show", "mine:1", check=2)
    assert daemon.cli("dataset", "show", "mine", json=True).json["version"] == 2
    res = daemon.cli("dataset", "delete", "mine", json=True).json
    assert res["deleted"] == [2]
    assert daemon.cli("dataset", "list", json=True).json["datasets"] == []
    # numbers are not reused
    assert register(daemon, "mine", d)["version"] == 3


def test_datasets_run_consumes_and_records(daemon, make_tree, tmp_path):
    d = make_tree({"a.csv": "1,2\n", "sub/b.csv": "3,4\n"}, name="ds")
    register(daemon, "train", d)
    d2 = make_tree({"c.csv": "5,6\n"}, name="ds2")
    v2 = register(daemon, "train", d2)
    s = make_tree({"l.py": LISTER}, name="src")
    run = daemon.cli("submit", "--source", s, "--python", PY, "--input", "data=dataset:train",
                     "--input", "old=dataset:train:1:download", "--", "l.py", "data",
                     json=True).json
    r = daemon.wait_terminal(run["id"])
    assert r["status"] == "Completed", r
    out = [l["text"] for l in daemon.logs(run["id"], "stdout")]
    assert "FILE c.csv 5,6" in out
    ins = {i["name"]: i for i in r["inputs"]}
    assert ins["data"]["dataset"] == "train" and ins["data"]["version"] == 2
    assert ins["data"]["source"] == "dataset:train:2" and ins["data"]["hash"] == v2["manifest"]
    assert ins["old"]["version"] == 1 and ins["old"]["mode"] == "download"
    shown = daemon.cli("show", run["id"]).stdout
    assert "dataset train:2" in shown and "dataset train:1" in shown
    ds = daemon.cli("dataset", "show", "train:2", json=True).json
    assert [x["id"] for x in ds["runs"]] == [run["id"]]
    # deleting the versions keeps the run's record
    daemon.cli("dataset", "delete", "train")
    r = daemon.show(run["id"])
    ins = {i["name"]: i for i in r["inputs"]}
    assert ins["data"]["version"] == 2 and ins["data"]["hash"] == v2["manifest"]
    # and a new run naming it is refused at submit
    res = daemon.cli("submit", "--source", s, "--python", PY, "--input",
                     "data=dataset:train", "--", "l.py", "data", check=2)
    assert "no dataset 'train'" in res.stderr


def test_datasets_mount_read_only(daemon, make_tree):
    d = make_tree({"a.csv": "1,2\n"}, name="ds")
    register(daemon, "m", d)
    s = make_tree({"l.py": LISTER}, name="src")
    run = daemon.cli("submit", "--source", s, "--python", PY, "--input",
                     "data=dataset:m:mount", "--", "l.py", "data", "write", json=True).json
    r = daemon.wait_terminal(run["id"])
    assert r["status"] == "Completed", r
    out = [l["text"] for l in daemon.logs(run["id"], "stdout")]
    assert "FILE a.csv 1,2" in out and "ERR 30" in out  # EROFS


def test_datasets_register_file_url(daemon, tmp_path):
    f = tmp_path / "remote.csv"
    f.write_text("r\n")
    res = daemon.cli("dataset", "register", "u", "file://%s" % f, json=True, check=False)
    if res.rc != 0 and "cannot download" in res.stderr:
        pytest.skip("this runyardd has no downloads (fetch not merged)")
    assert res.rc == 0, res
    show = daemon.cli("dataset", "show", "u", json=True).json
    assert show["file_list"] == [{"path": "remote.csv", "size": 2, "sha256": sha(b"r\n")}]
    res = daemon.cli("dataset", "register", "u", "file://%s#sha256=%s" % (f, "1" * 64),
                     check=2)
    assert "sha256" in res.stderr
    assert daemon.cli("dataset", "list", json=True).json["datasets"][-1]["version"] == 1


@pytest.mark.parametrize("args,code,text", [
    ({"name": "bad/name", "sources": ["/tmp"]}, "InvalidArgument", "not a dataset name"),
    ({"name": "trailing ", "sources": ["/tmp"]}, "InvalidArgument", "not a dataset name"),
    ({"name": "x", "sources": []}, "InvalidArgument", "sources"),
    ({"name": "x", "sources": ["relative"]}, "InvalidArgument", "absolute"),
    ({"name": "x", "sources": ["/no/such/file"]}, "InvalidArgument", "No such file"),
    ({"name": "x", "sources": ["ftp://127.0.0.1/x"]}, "InvalidArgument", "unsupported URL"),
    ({"name": "x", "sources": ["/tmp"] * 65}, "TooLarge", "at most"),
    ({"name": "x", "sources": ["/tmp"], "description": "d" * 10001}, "TooLarge",
     "description"),
])
def test_datasets_bad_register_refused(daemon, args, code, text):
    with pytest.raises(ryclient.ProtocolError) as e:
        daemon.rpc("dataset.register", args)
    assert e.value.code == code and text in str(e.value), e.value
    assert daemon.rpc("dataset.list")["datasets"] == []


def test_datasets_bad_refs_and_conflicts(daemon, make_tree, tmp_path):
    a = make_tree({"same.txt": "a"}, name="a")
    b = make_tree({"same.txt": "b"}, name="b")
    with pytest.raises(ryclient.ProtocolError) as e:
        daemon.rpc("dataset.register", {"name": "c", "sources": [str(a), str(b)]})
    assert e.value.code == "InvalidArgument" and "same.txt" in str(e.value)
    for op in ("dataset.show", "dataset.delete"):
        for ref, code in (("nope", "NotFound"), ("x:0", "InvalidArgument"),
                          ("x:abc", "InvalidArgument"), ("", "InvalidArgument")):
            with pytest.raises(ryclient.ProtocolError) as e:
                daemon.rpc(op, {"dataset": ref})
            assert e.value.code == code, (op, ref, e.value)
    with pytest.raises(ryclient.ProtocolError) as e:
        daemon.rpc("dataset.download", {"dataset": "nope", "dir": "/tmp/x"})
    assert e.value.code in ("NotFound", "InvalidArgument")
    with pytest.raises(ryclient.ProtocolError) as e:
        daemon.rpc("dataset.download", {"dataset": "nope", "dir": "rel"})
    assert "absolute" in str(e.value)
    daemon.cli("dataset", "register", "only", check=1)
    daemon.cli("dataset", "download", "x", check=1)
    assert daemon.rpc("dataset.list")["datasets"] == []


def test_datasets_azureml_shim(daemon, make_tree, tmp_path):
    d = make_tree({"a.csv": "1,2\n"}, name="az")
    code = script("""
        import json, sys
        from azureml.core.dataset import Dataset
        ws = None
        ds = Dataset.File.from_files(path=sys.argv[1])
        reg = ds.register(ws, "azds", description="from the shim")
        again = Dataset.File.from_files(path=[sys.argv[1]]).register(ws, "azds",
                                                                       create_new_version=True)
        got = Dataset.get_by_name(ws, "azds")
        one = Dataset.get_by_name(ws, "azds", version=1)
        m = got.as_named_input("training").as_mount()
        dl = one.as_named_input("old").as_download()
        print(json.dumps({"reg": [reg.name, reg.version], "again": again.version,
                          "got": [got.name, got.version], "one": one.version,
                          "mount": m._runyard_input(), "download": dl._runyard_input(),
                          "local": Dataset.File.from_files(path=sys.argv[1])
                                   .as_named_input("raw").as_mount()._runyard_input()}))
        try:
            Dataset.get_by_name(ws, "missing")
        except Exception as e:
            print("MISSING " + type(e).__name__)
    """)
    env = dict(os.environ, RUNYARD_SOCKET=daemon.socket, PYTHONPATH=str(SDK))
    proc = subprocess.run([PY, "-c", code, str(d)], capture_output=True, text=True, env=env,
                          timeout=60)
    assert proc.returncode == 0, proc.stderr
    out = proc.stdout.splitlines()
    res = json.loads(out[0])
    assert res["reg"] == ["azds", 1] and res["again"] == 2
    assert res["got"] == ["azds", 2] and res["one"] == 1
    assert res["mount"] == {"name": "training", "source": "dataset:azds:2", "mode": "mount"}
    assert res["download"] == {"name": "old", "source": "dataset:azds:1", "mode": "download"}
    assert res["local"] == {"name": "raw", "source": str(d), "mode": "mount"}
    assert out[1].startswith("MISSING ")
    # what ScriptRunConfig sends works as a submit's inputs
    s = make_tree({"l.py": LISTER}, name="src")
    r = daemon.rpc("run.submit", {"source": str(s), "command": ["l.py", "training"],
                                  "python": PY, "inputs": [res["mount"]]})
    run = daemon.wait_terminal(r["id"])
    assert run["status"] == "Completed", run
    assert run["inputs"][0]["dataset"] == "azds" and run["inputs"][0]["version"] == 2
