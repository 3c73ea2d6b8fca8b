"""Snapshots as archives: runyard snapshot RUN -o FILE, submit --source FILE."""

import hashlib
import io
import os
import stat
import subprocess
import tarfile
import zipfile

import pytest

from conftest import PY


def blob_count(daemon):
    root = daemon.state_dir / "blobs" / "sha256"
    return sum(len(f) for _, _, f in os.walk(root))


def source(make_tree):
    src = make_tree({"train.py": "print('trained')\n", "run.sh": "#!/bin/sh\necho hi\n",
                     "pkg/mod.py": "x = 1\n", "pkg/data.bin": bytes(range(256)) * 40,
                     ".amlignore": "*.tmp\n", "junk.tmp": "x"})
    (src / "empty").mkdir()
    os.chmod(src / "pkg" / "mod.py", 0o600)
    os.symlink("pkg/mod.py", src / "link")
    return src


def read_archive(path):
    """{name: (kind, mode, content or target)} of a tar or zip file."""
    out = {}
    if str(path).endswith(".zip"):
        with zipfile.ZipFile(path) as z:
            for i in z.infolist():
                mode = i.external_attr >> 16
                name = i.filename.rstrip("/")
                if stat.S_ISLNK(mode):
                    out[name] = ("L", 0, z.read(i).decode())
                elif i.is_dir():
                    out[name] = ("D", stat.S_IMODE(mode), None)
                else:
                    out[name] = ("F", stat.S_IMODE(mode), z.read(i))
        return out
    if str(path).endswith(".zst"):
        data = subprocess.run(["zstd", "-dc", str(path)], capture_output=True,
                              check=True).stdout
        tf = tarfile.open(fileobj=io.BytesIO(data))
    else:
        tf = tarfile.open(path)
    with tf:
        for m in tf.getmembers():
            name = m.name.rstrip("/")
            if m.issym():
                out[name] = ("L", 0, m.linkname)
            elif m.isdir():
                out[name] = ("D", m.mode, None)
            else:
                out[name] = ("F", m.mode, tf.extractfile(m).read())
    return out


EXPECTED = {
    ".amlignore": ("F", 0o644, b"*.tmp\n"),
    "train.py": ("F", 0o644, b"print('trained')\n"),
    "run.sh": ("F", 0o755, b"#!/bin/sh\necho hi\n"),
    "pkg": ("D", 0o755, None),
    "pkg/mod.py": ("F", 0o600, b"x = 1\n"),
    "pkg/data.bin": ("F", 0o644, bytes(range(256)) * 40),
    "empty": ("D", 0o755, None),
    "link": ("L", 0, "pkg/mod.py"),
}


@pytest.mark.parametrize("ext", ["tar", "tar.gz", "tgz", "tar.zst", "zip"])
def test_export_by_extension_and_back(daemon, make_tree, tmp_path, ext):
    src = source(make_tree)
    sub = daemon.submit(src, "train.py")
    out = tmp_path / ("snap." + ext)
    res = daemon.cli("snapshot", sub["id"], "-o", out, json=True)
    data = out.read_bytes()
    assert res.json["size"] == len(data)
    assert res.json["sha256"] == hashlib.sha256(data).hexdigest()
    assert res.json["snapshot"] == sub["snapshot"]
    magic = {"tar": b"ustar", "tar.gz": b"\x1f\x8b", "tgz": b"\x1f\x8b",
             "tar.zst": b"\x28\xb5\x2f\xfd", "zip": b"PK\x03\x04"}[ext]
    assert magic in data[:512]
    assert read_archive(out) == EXPECTED
    # Read back: the same snapshot, so the same run.
    again = daemon.submit(out, "train.py")
    assert again["snapshot"] == sub["snapshot"]
    assert daemon.wait_terminal(again["id"])["status"] == "Completed"
    assert [l["text"] for l in daemon.logs(again["id"])] == ["trained"]
    assert daemon.show(again["id"])["source"] == str(out)
    daemon.wait_terminal(sub["id"])
    assert "Wrote" in daemon.cli("snapshot", sub["id"], "-o", tmp_path / "x.tar").stdout


def test_export_errors(daemon, make_tree, tmp_path):
    src = source(make_tree)
    sub = daemon.submit(src, "train.py")
    res = daemon.cli("snapshot", sub["id"], "-o", tmp_path / "snap.rar", check=1)
    assert "cannot tell the archive format" in res.stderr
    res = daemon.cli("snapshot", sub["id"], "-o", tmp_path / "snap.rar", "--format", "zip")
    assert zipfile.is_zipfile(tmp_path / "snap.rar")
    res = daemon.cli("snapshot", "999", "-o", tmp_path / "x.tar", check=2)
    assert "(NotFound)" in res.stderr
    res = daemon.cli("snapshot", sub["id"], check=1)
    assert "-o FILE" in res.stderr
    res = daemon.cli("snapshot", sub["id"], "-o", tmp_path / "nodir" / "x.tar", check=1)
    assert "cannot create" in res.stderr
    assert not (tmp_path / "nodir").exists()
    # An export is read by its number and then gone.
    e = daemon.rpc("snapshot.export", {"run": sub["id"], "format": "tar"})
    r = daemon.rpc("snapshot.export_read", {"export": e["export"], "length": 100})
    assert len(r["data"]) > 0 and r["eof"] is False
    daemon.rpc("snapshot.export_read", {"export": e["export"], "offset": 100})
    with pytest.raises(Exception) as exc:
        daemon.rpc("snapshot.export_read", {"export": e["export"]})
    assert "NotFound" in str(exc.value)
    with pytest.raises(Exception) as exc:
        daemon.rpc("snapshot.export", {"run": sub["id"], "format": "rar"})
    assert "InvalidArgument" in str(exc.value)
    daemon.wait_terminal(sub["id"])


def write_tar(path, members):
    """members: [(name, bytes | ('sym', target) | ('hard', target) | 'dir')]."""
    with tarfile.open(path, "w:gz") as t:
        for name, what in members:
            info = tarfile.TarInfo(name)
            if what == "dir":
                info.type = tarfile.DIRTYPE
                info.mode = 0o755
                t.addfile(info)
            elif isinstance(what, tuple):
                info.type = tarfile.SYMTYPE if what[0] == "sym" else tarfile.LNKTYPE
                info.linkname = what[1]
                t.addfile(info)
            else:
                info.size = len(what)
                info.mode = 0o644
                t.addfile(info, io.BytesIO(what))


@pytest.mark.parametrize("members,what", [
    ([("ok.py", b"x"), ("/etc/evil", b"x")], "entry '/etc/evil' has an absolute path"),
    ([("ok.py", b"x"), ("../evil", b"x")], "entry '../evil' climbs out with '..'"),
    ([("ok.py", b"x"), ("a/../../evil", b"x")], "climbs out with '..'"),
    ([("ok.py", b"x"), ("h", ("hard", "../../etc/passwd"))], "hard link 'h' to"),
    ([("ok.py", b"x"), ("h", ("hard", "nothere"))], "not a file of the archive"),
    ([("ok.py", b"x"), ("d", b"file"), ("d/x", b"x")], "both as a file and as a directory"),
])
def test_bad_archives_are_refused_and_change_nothing(daemon, tmp_path, members, what):
    bad = tmp_path / "bad.tar.gz"
    write_tar(bad, members)
    before = blob_count(daemon)
    res = daemon.cli("submit", "--source", bad, "--python", PY, "--", "ok.py", check=2)
    assert what in res.stderr and "(InvalidArgument)" in res.stderr, res
    assert blob_count(daemon) == before
    assert daemon.runs() == []


def test_archive_contents_follow_the_rules(daemon, tmp_path):
    arc = tmp_path / "src.tar.gz"
    write_tar(arc, [
        ("./", "dir"),
        ("./.amlignore", b"*.log\ndata/\n"),
        ("./train.py", b"print('from the archive')\n"),
        ("./a.log", b"log"),
        ("./data/big.bin", b"x" * 1000),
        ("./sub/.amlignore", b"!keep.log\n"),
        ("./sub/keep.log", b"kept"),
        ("./link", ("sym", "train.py")),
        ("./escape", ("sym", "../../etc/passwd")),
        ("./copy.py", ("hard", "train.py")),
        ("./.git/config", b"[core]"),
    ])
    res = daemon.cli("submit", "--source", arc, "--python", PY, "--", "train.py", json=True)
    sub = res.json
    assert sub["files"] == 5  # .amlignore, train.py, sub/.amlignore, sub/keep.log, copy.py
    assert sub["skipped"] == [{"path": "escape", "reason": "symlink outside the tree"}]
    assert daemon.wait_terminal(sub["id"])["status"] == "Completed"
    assert [l["text"] for l in daemon.logs(sub["id"])] == ["from the archive"]
    dry = daemon.cli("submit", "--dry-run", "--source", arc, json=True).json
    assert sorted(e["path"] for e in dry["entries"]) == [
        ".amlignore", "copy.py", "link", "sub", "sub/.amlignore", "sub/keep.log", "train.py"]
    # Over a limit, named as for a directory, before anything is stored.
    before = blob_count(daemon)
    res = daemon.cli("submit", "--source", arc, "--max-snapshot-files", "2", "--python", PY,
                     "--", "train.py", check=2)
    assert "over the limit" in res.stderr and blob_count(daemon) == before
    # Not an archive at all.
    junk = tmp_path / "junk.tar.gz"
    junk.write_bytes(b"this is not an archive")
    res = daemon.cli("submit", "--source", junk, "--python", PY, "--", "train.py", check=2)
    assert "cannot read archive" in res.stderr
