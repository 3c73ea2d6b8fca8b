"""Snapshots: taken at submit, isolated from later edits, .git/ and ignored files left out."""

import subprocess

from conftest import WAIT_FILE, script

LIST_TREE = script("""
    import os
    for root, dirs, files in os.walk("."):
        dirs.sort()
        for f in sorted(files):
            print("FILE " + os.path.relpath(os.path.join(root, f), "."))
""")


def test_edit_after_submit_does_not_leak_into_the_run(daemon, make_tree, ext):
    go = ext / "go"
    src = make_tree({
        "data.txt": "old content\n",
        "read.py": WAIT_FILE + script("""
            import sys
            wait_file(sys.argv[1])
            print("DATA " + open("data.txt").read().strip())
            print("VERSION 1")
        """),
    })
    sub = daemon.submit(src, "read.py", str(go))
    # The submit call has returned: the snapshot is stored. Edit everything.
    (src / "data.txt").write_text("new content\n")
    (src / "read.py").write_text("print('VERSION 2')\n")
    (src / "added.txt").write_text("added later\n")
    go.write_text("")
    run = daemon.wait_terminal(sub["id"])
    assert run["status"] == "Completed", run
    texts = [l["text"] for l in daemon.logs(sub["id"])]
    assert texts == ["DATA old content", "VERSION 1"]


def test_git_directory_is_not_copied(daemon, make_tree):
    src = make_tree({"list.py": LIST_TREE, "pkg/mod.py": "x = 1\n"})
    subprocess.run(["git", "init", "-q", str(src)], check=True)
    subprocess.run(["git", "-C", str(src), "add", "."], check=True)
    subprocess.run(["git", "-C", str(src), "-c", "user.name=t", "-c", "user.email=t@t",
                    "commit", "-qm", "init"], check=True)
    sub = daemon.submit(src, "list.py")
    assert daemon.wait_terminal(sub["id"])["status"] == "Completed"
    files = sorted(l["text"][5:] for l in daemon.logs(sub["id"]) if l["text"].startswith("FILE "))
    assert "list.py" in files and "pkg/mod.py" in files
    assert not [f for f in files if f == ".git" or f.startswith(".git/")], files


def test_amlignore_patterns_are_honoured(daemon, make_tree):
    src = make_tree({
        "list.py": LIST_TREE,
        ".amlignore": "*.tmp\ndata/\n!keep.tmp\n",
        "a.tmp": "x", "keep.tmp": "x", "data/big.csv": "1,2\n", "sub/data/inner.csv": "3\n",
        "src/ok.py": "",
    })
    sub = daemon.submit(src, "list.py")
    assert daemon.wait_terminal(sub["id"])["status"] == "Completed"
    files = sorted(l["text"][5:] for l in daemon.logs(sub["id"]) if l["text"].startswith("FILE "))
    for f in ("list.py", "keep.tmp", "src/ok.py"):
        assert f in files, files
    for f in ("a.tmp", "data/big.csv", "sub/data/inner.csv"):
        assert f not in files, files


def test_unchanged_resubmit_has_the_same_snapshot(daemon, make_tree):
    src = make_tree({"a.py": "print(1)\n", "b.txt": "b\n"})
    one = daemon.submit(src, "a.py")
    two = daemon.submit(src, "a.py")
    assert one["snapshot"] == two["snapshot"]
    (src / "b.txt").write_text("changed\n")
    three = daemon.submit(src, "a.py")
    assert three["snapshot"] != one["snapshot"]
    for r in (one, two, three):
        daemon.wait_terminal(r["id"])
