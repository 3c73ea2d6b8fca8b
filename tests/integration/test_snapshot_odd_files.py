"""Odd files: symlinks in and out of the tree, FIFOs, sockets, devices,
unreadable files, and names that are not plain ASCII."""

import json
import os
import shutil
import socket
import stat
import subprocess

import pytest

from conftest import Daemon, RUNYARDD, script

LIST_BYTES = script("""
    import os, stat
    for root, dirs, files in os.walk(b"."):
        dirs.sort()
        for name in sorted(dirs + files):
            p = os.path.join(root, name)
            st = os.lstat(p)
            kind = "L" if stat.S_ISLNK(st.st_mode) else "D" if stat.S_ISDIR(st.st_mode) else "F"
            extra = os.readlink(p).hex() if kind == "L" else (
                open(p, "rb").read().hex() if kind == "F" else "")
            print("ENTRY", kind, os.path.relpath(p, b".").hex(), extra)
""")


def entries(daemon, run):
    out = {}
    for line in daemon.logs(run):
        parts = line["text"].split()
        if parts and parts[0] == "ENTRY":
            out[bytes.fromhex(parts[2])] = (parts[1], bytes.fromhex(parts[3]) if len(parts) > 3
                                            else b"")
    return out


def test_symlinks_fifos_sockets_devices(daemon, make_tree, tmp_path):
    (tmp_path / "outside.txt").write_text("outside\n")
    src = make_tree({"list.py": LIST_BYTES, "a/b/target.txt": "t\n"})
    os.symlink("a/b/target.txt", src / "in_file")
    os.symlink("a", src / "in_dir")
    os.symlink("../../list.py", src / "a" / "b" / "up")
    os.symlink("../outside.txt", src / "out_rel")
    os.symlink(str(tmp_path / "outside.txt"), src / "out_abs")
    os.symlink("a/../../outside.txt", src / "out_climb")
    os.mkfifo(src / "fifo")
    here = os.getcwd()
    os.chdir(src)
    try:
        s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        s.bind("sock")
        s.close()
    finally:
        os.chdir(here)
    try:
        os.mknod(src / "dev", stat.S_IFCHR | 0o600, os.makedev(1, 3))
        have_dev = True
    except OSError:
        have_dev = False
    sub = daemon.submit(src, "list.py")
    skipped = {s["path"]: s["reason"] for s in sub["skipped"]}
    want = {"out_rel": "symlink outside the tree", "out_abs": "symlink outside the tree",
            "out_climb": "symlink outside the tree", "fifo": "fifo", "sock": "socket"}
    if have_dev:
        want["dev"] = "device"
    assert skipped == want
    # The reply's notes on stderr, and the list kept with the run.
    res = daemon.cli("submit", "--source", src, "--python", "/usr/bin/python3", "list.py")
    assert "runyard: note: skipped fifo (fifo)" in res.stderr
    assert "runyard: note: skipped out_abs (symlink outside the tree)" in res.stderr
    shown = daemon.show(sub["id"])["skipped"]
    assert {s["path"]: s["reason"] for s in shown} == want
    assert "Skipped:" in daemon.cli("show", sub["id"]).stdout

    assert daemon.wait_terminal(sub["id"])["status"] == "Completed"
    got = entries(daemon, sub["id"])
    assert got[b"in_file"] == ("L", b"a/b/target.txt")
    assert got[b"in_dir"] == ("L", b"a")
    assert got[b"a/b/up"] == ("L", b"../../list.py")
    for name in want:
        assert name.encode() not in got, name


def test_names_with_spaces_newlines_and_bytes_round_trip(daemon, make_tree, tmp_path):
    src = make_tree({"list.py": LIST_BYTES})
    names = [b"sp ace", b"trailing ", b"new\nline", b"tab\there", b"bad\xffname",
             b"caf\xc3\xa9", b"dir \xfe/in\nside"]
    for n in names:
        p = os.path.join(bytes(src), n)
        os.makedirs(os.path.dirname(p), exist_ok=True)
        with open(p, "wb") as f:
            f.write(b"content of " + n)
    os.mkfifo(os.path.join(bytes(src), b"fifo\xff"))
    res = daemon.cli("submit", "--source", src, "--python", "/usr/bin/python3", "--",
                     "list.py", json=True)
    # Valid JSON, with the name that is not UTF-8 made readable.
    assert res.json["skipped"] == [{"path": "fifo\ufffd", "reason": "fifo"}]
    run = res.json["id"]
    assert daemon.wait_terminal(run)["status"] == "Completed"
    got = entries(daemon, run)
    for n in names:
        assert got.get(n) == ("F", b"content of " + n), (n, sorted(got))

    # The same names survive an archive both ways.
    for fmt in ("tar.gz", "zip"):
        out = tmp_path / ("snap." + fmt)
        daemon.cli("snapshot", run, "-o", out)
        res = daemon.cli("submit", "--source", out, "--python", "/usr/bin/python3", "--",
                         "list.py", json=True)
        assert res.json["snapshot"] == daemon.show(run)["snapshot"], fmt
        daemon.wait_terminal(res.json["id"])

    # And a dry run lists them as valid JSON.
    dry = daemon.cli("submit", "--dry-run", "--source", src, json=True).json
    paths = {e["path"] for e in dry["entries"]}
    assert "bad\ufffdname" in paths and "new\nline" in paths and "caf\u00e9" in paths


class UnprivilegedDaemon(Daemon):
    """A daemon without the capabilities that let root read any file."""

    def argv(self):
        drop = "-dac_override,-dac_read_search"
        return ["setpriv", "--inh-caps=" + drop, "--bounding-set=" + drop] + super().argv()


@pytest.fixture
def plain_daemon(tmp_path):
    if os.geteuid() != 0:
        d = Daemon(tmp_path / "plain")
    elif shutil.which("setpriv"):
        d = UnprivilegedDaemon(tmp_path / "plain")
    else:
        pytest.skip("running as root without setpriv: cannot make a file unreadable")
    d.start()
    yield d
    d.teardown()


def test_unreadable_files_and_directories_are_skipped(plain_daemon, make_tree):
    d = plain_daemon
    src = make_tree({"list.py": LIST_BYTES, "ok.txt": "ok\n", "secret.txt": "s\n",
                     "locked/inner.txt": "x\n", "half/inner.txt": "x\n"})
    os.chmod(src / "secret.txt", 0)
    os.chmod(src / "locked", 0)
    os.chmod(src / "half", 0o444)  # listable, not searchable
    try:
        sub = d.submit(src, "list.py")
        skipped = {s["path"]: s["reason"] for s in sub["skipped"]}
        assert skipped == {"secret.txt": "unreadable", "locked": "unreadable directory",
                           "half": "unreadable directory"}
        assert d.wait_terminal(sub["id"])["status"] == "Completed"
        got = entries(d, sub["id"])
        assert b"ok.txt" in got and b"secret.txt" not in got and b"locked" not in got
        res = d.cli("ignore", "check", "--source", src, "secret.txt", "locked", json=True)
        assert [r["status"] for r in res.json["results"]] == ["skipped", "skipped"]
    finally:
        os.chmod(src / "secret.txt", 0o644)
        os.chmod(src / "locked", 0o755)
        os.chmod(src / "half", 0o755)


def test_an_unreadable_source_is_refused(plain_daemon, make_tree):
    src = make_tree({"a.py": ""})
    os.chmod(src, 0)
    try:
        res = plain_daemon.cli("submit", "--source", src, "--", "a.py", check=2)
        assert "(PermissionDenied)" in res.stderr or "(InvalidArgument)" in res.stderr
        assert str(src) in res.stderr
    finally:
        os.chmod(src, 0o755)


def test_an_unreadable_ignore_file_fails_the_submit(plain_daemon, make_tree):
    """Taking what the user meant to leave out would be worse than failing."""
    src = make_tree({".amlignore": "secret/\n", "a.py": "", "sub/.amlignore": "*.key\n",
                     "sub/x.key": "k"})
    os.chmod(src / "sub" / ".amlignore", 0)
    try:
        res = plain_daemon.cli("submit", "--source", src, "--", "a.py", check=2)
        assert "cannot read the ignore file sub/.amlignore" in res.stderr
        assert "(PermissionDenied)" in res.stderr
        assert plain_daemon.runs() == []
    finally:
        os.chmod(src / "sub" / ".amlignore", 0o644)
