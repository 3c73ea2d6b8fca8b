"""runyard ignore check: for each path, taken or not, and why."""

import os
import subprocess

from conftest import PY

AMLIGNORE = "*.tmp\ndata/\n!keep.tmp\n# comment\n\\#literal\nbuild/\n"


def tree(make_tree):
    src = make_tree({
        ".amlignore": AMLIGNORE,
        "a.tmp": "x", "keep.tmp": "x", "data/big.csv": "1", "train.py": "print(1)\n",
        "sub/.amlignore": "!a.tmp\nlocal.txt\n", "sub/a.tmp": "x", "sub/local.txt": "x",
        "#literal": "x", "build": "a file, not a directory", "src/build/out.o": "x",
    })
    os.mkfifo(src / "pipe")
    os.symlink("/etc/passwd", src / "outside")
    os.symlink("train.py", src / "inside")
    subprocess.run(["git", "init", "-q", str(src)], check=True)
    return src


def by_path(res):
    return {r["path"]: r for r in res.json["results"]}


def test_each_path_says_taken_or_why_not(daemon, make_tree):
    src = tree(make_tree)
    paths = ["a.tmp", "keep.tmp", "data/big.csv", "train.py", "sub/a.tmp", "sub/local.txt",
             "#literal", "build", "src/build/out.o", "pipe", "outside", "inside",
             ".git/config", "missing.tmp", "newdir/"]
    res = daemon.cli("ignore", "check", "--source", src, *paths, json=True)
    r = by_path(res)
    assert res.json["ignore_file"] == ".amlignore"

    def verdict(p):
        x = r[p]
        return (x["status"], x.get("source"), x.get("line"), x.get("pattern"))

    assert verdict("a.tmp") == ("ignored", ".amlignore", 1, "*.tmp")
    assert verdict("keep.tmp") == ("taken", ".amlignore", 3, "!keep.tmp")
    assert verdict("data/big.csv") == ("ignored", ".amlignore", 2, "data/")
    assert r["data/big.csv"]["directory"] == "data"
    assert verdict("train.py") == ("taken", None, None, None)
    assert verdict("sub/a.tmp") == ("taken", "sub/.amlignore", 1, "!a.tmp")
    assert verdict("sub/local.txt") == ("ignored", "sub/.amlignore", 2, "local.txt")
    assert verdict("#literal") == ("ignored", ".amlignore", 5, "\\#literal")
    # build/ matches directories only: the file named build is taken.
    assert verdict("build") == ("taken", None, None, None)
    assert verdict("src/build/out.o") == ("ignored", ".amlignore", 6, "build/")
    assert r["pipe"]["status"] == "skipped" and r["pipe"]["kind"] == "fifo"
    assert r["outside"]["status"] == "skipped" and "outside" in r["outside"]["reason"]
    assert r["inside"]["status"] == "taken" and r["inside"]["kind"] == "symlink"
    assert r[".git/config"]["status"] == "never"
    assert r["missing.tmp"]["kind"] == "missing" and r["missing.tmp"]["status"] == "ignored"
    assert r["newdir/"]["status"] == "taken"

    # The table for people: the deciding file:line:pattern on each line.
    res = daemon.cli("ignore", "check", "--source", src, "a.tmp", "data/big.csv", "keep.tmp")
    lines = res.stdout.splitlines()
    assert lines[0].split() == ["STATUS", "PATH", "WHY"]
    assert lines[1].split()[:3] == ["ignored", "a.tmp", ".amlignore:1:*.tmp"]
    assert "(in ignored directory data/)" in lines[2]
    assert lines[3].split()[:2] == ["taken", "keep.tmp"] and ".amlignore:3:!keep.tmp" in lines[3]


def test_paths_are_relative_to_the_current_directory(daemon, make_tree):
    src = tree(make_tree)
    # No --source: the current directory is the source (here sub/, whose
    # own .amlignore is then the root's).
    res = daemon.cli("ignore", "check", "a.tmp", "local.txt", cwd=src / "sub", json=True)
    assert res.json["source"] == str(src / "sub")
    assert [(r["path"], r["status"]) for r in res.json["results"]] == [
        ("a.tmp", "taken"), ("local.txt", "ignored")]
    # With --source, paths are still relative to the current directory.
    res = daemon.cli("ignore", "check", "--source", src, "a.tmp", "../keep.tmp",
                     str(src / "train.py"), cwd=src / "sub", json=True)
    assert [r["path"] for r in res.json["results"]] == ["sub/a.tmp", "keep.tmp", "train.py"]
    assert [r["status"] for r in res.json["results"]] == ["taken", "taken", "taken"]


def test_path_outside_the_source_is_refused(daemon, make_tree, tmp_path):
    src = tree(make_tree)
    res = daemon.cli("ignore", "check", "--source", src, "/etc/passwd", check=1)
    assert "is not inside the source directory" in res.stderr
    res = daemon.cli("ignore", "check", "--source", src, "../x", cwd=src, check=1)
    assert "is not inside the source directory" in res.stderr
    # The op itself refuses what the CLI would not send.
    res = daemon.rpc("ignore.check", {"source": str(src), "paths": ["../x", "/abs"]})
    assert [r["status"] for r in res["results"]] == ["error", "error"]
    res = daemon.cli("ignore", "check", "--source", src, check=1)
    assert "no PATH" in res.stderr


def test_gitignore_when_there_is_no_amlignore(daemon, make_tree):
    src = make_tree({".gitignore": "*.log\n", "a.log": "x", "sub/.gitignore": "!keep.log\n",
                     "sub/keep.log": "x"}, name="g")
    res = daemon.cli("ignore", "check", "--source", src, "a.log", "sub/keep.log", json=True)
    assert res.json["ignore_file"] == ".gitignore"
    r = by_path(res)
    assert r["a.log"]["status"] == "ignored" and r["a.log"]["source"] == ".gitignore"
    assert r["sub/keep.log"]["status"] == "taken"
    assert r["sub/keep.log"]["source"] == "sub/.gitignore"


def test_check_agrees_with_what_a_submit_takes(daemon, make_tree):
    src = tree(make_tree)
    sub = daemon.submit(src, "train.py")
    daemon.wait_terminal(sub["id"])
    files = [p for p in ("a.tmp", "keep.tmp", "data/big.csv", "train.py", "sub/a.tmp",
                         "sub/local.txt", "#literal", "build", "src/build/out.o", "inside")]
    res = daemon.cli("ignore", "check", "--source", src, *files, json=True)
    taken = {r["path"] for r in res.json["results"] if r["status"] == "taken"}
    dry = daemon.cli("submit", "--dry-run", "--source", src, json=True).json
    listed = {e["path"] for e in dry["entries"]}
    assert taken == listed & set(files)
    assert sub["files"] == dry["files"]
