"""What users and runs do that they should not, or by accident (docs/reliability.md): each
case gets a clear error or is made harmless, and changes nothing else."""

import os
import pathlib

from conftest import script


def test_a_source_above_the_state_directory_leaves_the_store_out(daemon, make_tree):
    """A submit from a directory that holds the daemon's state directory (from $HOME, with the
    state in ~/.local/state) snapshots the project, never the store: runs inside runs."""
    proj = daemon.root / "proj"
    proj.mkdir()
    (proj / "main.py").write_text("import os\nprint(' '.join(sorted(os.listdir('.'))))\n")
    first = daemon.submit(str(daemon.root), "proj/main.py")
    assert daemon.wait_terminal(first["id"])["status"] == "Completed"
    # Again, now that the store holds a run, and with ignore rules that would take it in.
    (daemon.root / ".amlignore").write_text("!state/\n")
    for _ in range(2):
        run = daemon.submit(str(daemon.root), "proj/main.py")
        assert daemon.wait_terminal(run["id"])["status"] == "Completed"
        skipped = {s["path"]: s["reason"] for s in run["skipped"]}
        assert skipped.get("state") == "runyard's state directory", run["skipped"]
        top = daemon.logs(run["id"])[0]["text"].split()
        assert "proj" in top and "state" not in top, top


def test_a_source_inside_the_state_directory_is_refused(daemon, make_tree):
    src = make_tree({"a.py": "print(1)\n"})
    daemon.wait_terminal(daemon.submit(src, "a.py")["id"])
    before = daemon.cli("runs", "--json", json=True).json
    for inside in (daemon.state_dir, daemon.state_dir / "blobs", daemon.state_dir / "tmp"):
        res = daemon.cli("submit", "--source", str(inside), "--", "a.py", check=False)
        assert res.rc != 0
        assert "inside runyard's state directory" in res.stderr, res.stderr
    assert daemon.cli("runs", "--json", json=True).json["runs"] == before["runs"]


def test_a_run_may_still_submit_from_its_own_directory(daemon, make_tree):
    """A run's working directory is in the state directory, and the one place there that is
    a source: runs submit their children from it."""
    src = make_tree({"parent.py": script("""
        import json, os, subprocess, sys
        open("child.py", "w").write("print('child ran')\\n")
        out = subprocess.run([os.environ["RUNYARD_TEST_CLI"], "--socket",
                              os.environ["RUNYARD_TEST_SOCKET"], "submit", "--json",
                              "--source", ".", "--python", sys.executable, "--", "child.py"],
                             capture_output=True, text=True)
        print(out.returncode, os.getcwd(), out.stderr.strip())
        print(json.loads(out.stdout)["id"] if out.returncode == 0 else "none")
    """)})
    from conftest import CLI
    run = daemon.submit(src, "parent.py", env={"RUNYARD_TEST_CLI": str(CLI),
                                                "RUNYARD_TEST_SOCKET": daemon.socket})
    assert daemon.wait_terminal(run["id"])["status"] == "Completed"
    lines = [l["text"] for l in daemon.logs(run["id"])]
    assert lines[0].startswith("0 " + os.path.realpath(daemon.state_dir / "runs")), lines
    child = lines[1]
    assert daemon.wait_terminal(child)["status"] == "Completed"
    assert [l["text"] for l in daemon.logs(child)] == ["child ran"]


def symlinks(tree, links):
    for name, target in links.items():
        os.symlink(target, os.path.join(tree, name))


def test_a_symlink_chain_that_leaves_the_tree_is_not_taken(daemon, make_tree, tmp_path):
    """q -> . and p -> q/.. each look inside on their face, but p is the tree's parent; and
    inputs -> p would have the daemon place an input outside the run's directory."""
    src = make_tree({"main.py": script("""
        import os
        print(sorted(os.listdir(".")))
        print(open("inputs/d").read())
    """)})
    symlinks(src, {"q": ".", "p": "q/..", "inputs": "p", "ok": "q/main.py"})
    data = tmp_path / "data.txt"
    data.write_text("the data")
    run = daemon.cli("submit", "--source", src, "--python", "/usr/bin/python3", "--input",
                     "d=%s" % data, "--", "main.py", json=True).json
    skipped = {s["path"]: s["reason"] for s in run["skipped"]}
    assert skipped.get("p") == "symlink outside the tree", run["skipped"]
    assert skipped.get("inputs") == "symlink outside the tree", run["skipped"]
    assert "q" not in skipped and "ok" not in skipped
    assert daemon.wait_terminal(run["id"])["status"] == "Completed"
    lines = [l["text"] for l in daemon.logs(run["id"], stream="stdout")]
    assert lines == ["['inputs', 'logs', 'main.py', 'ok', 'outputs', 'q']", "the data"]
    # Nothing came out above the run's directory.
    assert not list(daemon.state_dir.glob("runs/d")) and not (daemon.state_dir / "d").exists()


def test_an_input_is_never_placed_through_a_symlink(daemon, make_tree, tmp_path):
    """Even a link that stays inside: the daemon writes inputs and outputs only through real
    directories, so no chain it missed can take it out."""
    src = make_tree({"main.py": "print('ran')\n", "real/keep.txt": "x\n"})
    symlinks(src, {"inputs": "real"})
    data = tmp_path / "data.txt"
    data.write_text("the data")
    run = daemon.cli("submit", "--source", src, "--python", "/usr/bin/python3", "--input",
                     "d=%s" % data, "--", "main.py", json=True).json
    end = daemon.wait_terminal(run["id"])
    assert end["status"] == "Failed"
    assert end["error"]["stage"] == "Preparing"
    assert "inputs is a symlink in the working directory" in end["error"]["message"], end
    assert not (pathlib.Path(src) / "real" / "d").exists()
    # The same for an output directory.
    (tmp_path / "out").mkdir()
    src2 = make_tree({"main.py": "print('ran')\n", "elsewhere/.keep": ""}, name="src2")
    symlinks(src2, {"outputs": "elsewhere"})
    run = daemon.cli("submit", "--source", src2, "--python", "/usr/bin/python3", "--output",
                     "o=%s" % (tmp_path / "out"), "--", "main.py", json=True).json
    end = daemon.wait_terminal(run["id"])
    assert end["status"] == "Failed" and "outputs is a symlink" in end["error"]["message"], end


def test_a_symlink_chain_in_an_archive_is_not_taken(daemon, tmp_path):
    import io
    import tarfile
    arc = tmp_path / "src.tar"
    with tarfile.open(arc, "w") as t:
        body = b"import os\nprint(sorted(os.listdir('.')))\n"
        info = tarfile.TarInfo("main.py")
        info.size = len(body)
        t.addfile(info, io.BytesIO(body))
        for name, target in (("q", "."), ("p", "q/.."), ("inputs", "p")):
            info = tarfile.TarInfo(name)
            info.type = tarfile.SYMTYPE
            info.linkname = target
            t.addfile(info)
    data = tmp_path / "data.txt"
    data.write_text("the data")
    run = daemon.cli("submit", "--source", str(arc), "--python", "/usr/bin/python3", "--input",
                     "d=%s" % data, "--", "main.py", json=True).json
    skipped = {s["path"]: s["reason"] for s in run["skipped"]}
    assert skipped.get("p") == skipped.get("inputs") == "symlink outside the tree", skipped
    assert daemon.wait_terminal(run["id"])["status"] == "Completed"
    assert not (daemon.state_dir / "d").exists() and not list(daemon.state_dir.glob("runs/d"))


def test_fifos_where_files_belong_never_hold_the_daemon(daemon, make_tree, tmp_path):
    """A FIFO given as a model file, as an archive source, left in ./outputs or put where the
    tracking file goes: each is refused or left out at once, and the daemon goes on
    answering (before, each open waited for a writer that never came)."""
    fifos = []
    for i in range(5):
        f = tmp_path / ("f%d" % i)
        os.mkfifo(f)
        fifos.append(f)
    for f in fifos:
        res = daemon.cli("model", "register", "m", "--file", str(f), check=False, timeout=20)
        assert res.rc != 0 and "m" not in [m["name"] for m in
                                            daemon.rpc("model.list", {})["models"]], res
    os.rename(fifos[0], str(fifos[0]) + ".tar")
    res = daemon.cli("submit", "--source", str(fifos[0]) + ".tar", "--", "a.py", check=False,
                     timeout=20)
    assert res.rc != 0 and ("not a file" in res.stderr or "neither" in res.stderr), res
    src = make_tree({"fifo.py": script("""
        import os
        os.makedirs("outputs", exist_ok=True)
        for i in range(5):
            os.mkfifo("outputs/f%d" % i)
        open("outputs/real.txt", "w").write("kept")
        t = os.environ.get("RUNYARD_TRACKING_FILE")
        if t:
            os.unlink(t) if os.path.exists(t) else None
            os.mkfifo(t)
        print("left fifos", flush=True)
    """)})
    run = daemon.submit(src, "fifo.py")
    end = daemon.wait_terminal(run["id"], timeout=60)
    assert end["status"] == "Completed", end
    outs = [o["path"] for o in daemon.rpc("run.outputs", {"run": run["id"]})["artifacts"]]
    assert outs == ["outputs/real.txt"], outs
    # Still answering, at once.
    ok = daemon.submit(src, "fifo.py")
    assert daemon.wait_terminal(ok["id"], timeout=60)["status"] == "Completed"


def test_requests_that_are_not_utf8_or_hold_a_nul_are_refused_whole(daemon, make_tree):
    """cJSON passes any bytes through: one submit with a Latin-1 argument used to make every
    later run.list reply invalid JSON, and a \\u0000 cut a string short silently."""
    src = make_tree({"a.py": "print(1)\n"})
    daemon.wait_terminal(daemon.submit(src, "a.py")["id"])
    before = daemon.cli("runs", "--json", json=True).json["runs"]
    hello = b'"op":"hello","args":{"proto":1}'
    bad = [
        b'{"id":2,"op":"run.submit","args":{"source":"%s","command":["a.py","caf\xe9"]}}',
        b'{"id":2,"op":"run.submit","args":{"source":"%s","command":["a.py","x\\u0000y"]}}',
        b'{"id":2,"op":"run.submit","args":{"source":"%s","command":["a.py"],'
        b'"experiment":"e\xed\xa0\x80"}}',  # a surrogate, in UTF-8 form
    ]
    import ryclient
    with daemon.client(hello=False) as c:
        c.send_raw(ryclient.frame(b"{\"id\":1," + hello + b"}"))
        assert c.read_reply()["ok"]
        for raw in bad:
            c.send_raw(ryclient.frame(raw.replace(b"%s", str(src).encode())))
            r = c.read_reply()
            assert r["ok"] is False and r["id"] == 2, r
            assert r["error"]["code"] == "BadRequest"
            assert ("not valid UTF-8" in r["error"]["message"] or
                    "NUL character" in r["error"]["message"]), r
        # An escaped backslash before u0000 is plain text, and taken.
        ok = (b'{"id":3,"op":"run.submit","args":{"source":"%s","command":["a.py","x\\\\u0000"],'
              b'"python":"/usr/bin/python3"}}').replace(b"%s", str(src).encode())
        c.send_raw(ryclient.frame(ok))
        r = c.read_reply()
        assert r["ok"], r
    daemon.wait_terminal(r["result"]["id"])
    runs = daemon.cli("runs", "--json", json=True).json["runs"]
    assert len(runs) == len(before) + 1
    assert daemon.show(r["result"]["id"])["command"] == ["a.py", "x\\u0000"]


def test_an_open_state_directory_is_made_private_and_anothers_refused(daemon, tmp_path):
    """Another user read every run's token from a state directory left 0755."""
    import subprocess
    from conftest import RUNYARDD
    daemon.stop()
    os.chmod(daemon.state_dir, 0o755)
    daemon.start()
    assert os.stat(daemon.state_dir).st_mode & 0o777 == 0o700
    assert "was open to other users (mode 0755): made 0700" in daemon.log_text()
    if os.geteuid() != 0:
        return  # giving the directory to another user needs root
    daemon.stop()
    os.chown(daemon.state_dir, 65534, 65534)
    res = subprocess.run([str(RUNYARDD), "--state-dir", str(daemon.state_dir), "--socket",
                          str(tmp_path / "other.sock")], capture_output=True, text=True,
                         timeout=60)
    assert res.returncode != 0
    assert "belongs to uid 65534, not to this daemon's user" in res.stderr, res.stderr
    os.chown(daemon.state_dir, 0, 0)
    daemon.start()


def mount_tmpfs(path, size):
    """A small tmpfs at path, or pytest.skip (mounting needs root and a kernel that lets us)."""
    import subprocess
    import pytest
    path.mkdir(parents=True, exist_ok=True)
    res = subprocess.run(["mount", "-t", "tmpfs", "-o", "size=%s" % size, "tmpfs", str(path)],
                         capture_output=True, text=True)
    if res.returncode != 0:
        pytest.skip("cannot mount a tmpfs here: %s" % res.stderr.strip())


def test_a_full_disk_fails_the_run_clearly_and_the_daemon_recovers(daemon_factory, make_tree,
                                                                    tmp_path):
    """A run that printed 40,000 lines onto a full disk used to end Completed with lines
    missing and no word. Now the lines that could not be kept are counted, the run waits in
    its stage while the store cannot take its end, and once there is room it ends Failed
    with NoSpace, every line that reached the disk stored once and in order."""
    import subprocess
    fs = tmp_path / "fs"
    mount_tmpfs(fs, "3m")
    try:
        (tmp_path / "daemon0").mkdir()
        (tmp_path / "daemon0" / "state").symlink_to(fs)
        # --min-free 0: the submit must get through to fill the disk during the run.
        d = daemon_factory(extra=["--min-free", "0"])
        src = make_tree({"p.py": script("""
            for i in range(40000):
                print("line %06d of the run, padded out to make it longer ........" % i)
        """)})
        run = d.submit(src, "p.py")
        # The disk fills up: the run is held, not ended with its lines lost.
        import time
        time.sleep(3)
        assert d.status(run["id"]) in ("Running", "Finalizing")
        subprocess.run(["mount", "-o", "remount,size=64m", str(fs)], check=True)
        end = d.wait_terminal(run["id"])
        assert end["status"] == "Failed" and end["error"]["code"] == "NoSpace", end
        dropped = int(end["error"]["message"].split()[0])
        lines = [l["text"] for l in d.logs(run["id"])]
        assert 0 < dropped < 40000 and len(lines) == 40000 - dropped
        numbers = [int(l.split()[1]) for l in lines]
        assert numbers == sorted(set(numbers)), "lines duplicated or out of order"
        assert "its end waits until the store can take the rest of it" in d.log_text()
        # Recovered by itself: the next run is whole.
        again = d.submit(src, "p.py")
        end = d.wait_terminal(again["id"])
        assert end["status"] == "Completed" and len(d.logs(again["id"])) == 40000
        d.stop()
        import sqlite3
        db = sqlite3.connect(str(fs / "runyard.db"))
        assert db.execute("PRAGMA integrity_check").fetchone()[0] == "ok"
        db.close()
    finally:
        subprocess.run(["umount", "-l", str(fs)])
