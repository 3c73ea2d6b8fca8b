"""Outputs: ./outputs and ./logs stored with size, sha256 and mode; download."""

import base64
import hashlib
import os
import random

from conftest import script

BIG = random.Random(7).randbytes(5 * 1024 * 1024 + 123)  # more than one artifact.read chunk


def sha(data):
    return hashlib.sha256(data).hexdigest()


def writer_tree(make_tree):
    return make_tree({
        "big.bin": BIG,
        "w.py": script("""
            import os, shutil, sys
            open("outputs/a.txt", "w").write("alpha\\n")
            os.chmod("outputs/a.txt", 0o644)
            os.makedirs("outputs/sub/deeper")
            shutil.copyfile("big.bin", "outputs/sub/big.bin")
            open("outputs/sub/deeper/run.sh", "w").write("#!/bin/sh\\necho hi\\n")
            os.chmod("outputs/sub/deeper/run.sh", 0o755)
            open("outputs/empty", "w").close()
            os.chmod("outputs/empty", 0o600)
            os.symlink(sys.argv[1], "outputs/secret-link")
            os.symlink("a.txt", "outputs/inner-link")
            open("logs/train.log", "w").write("epoch 1\\n")
            os.chmod("logs/train.log", 0o644)
            print("wrote outputs")
        """),
    }), {
        "outputs/a.txt": (b"alpha\n", 0o644),
        "outputs/sub/big.bin": (BIG, 0o644),
        "outputs/sub/deeper/run.sh": (b"#!/bin/sh\necho hi\n", 0o755),
        "outputs/empty": (b"", 0o600),
        "logs/train.log": (b"epoch 1\n", 0o644),
    }


def test_outputs_listed_with_size_sha256_mode(daemon, make_tree, ext):
    secret = ext / "secret.txt"
    secret.write_bytes(b"this file is outside the run and must not be stored\n")
    src, expected = writer_tree(make_tree)
    sub = daemon.submit(src, "w.py", str(secret))
    run = daemon.wait_terminal(sub["id"])
    assert run["status"] == "Completed", run

    arts = daemon.cli("outputs", sub["id"], json=True).json["artifacts"]
    paths = [a["path"] for a in arts]
    assert paths == sorted(paths), "artifacts not sorted by path"
    by_path = {a["path"]: a for a in arts}
    for path, (data, mode) in expected.items():
        assert path in by_path, "%s missing from %s" % (path, paths)
        a = by_path[path]
        assert a["size"] == len(data), path
        assert a["sha256"] == sha(data), path
        assert a["mode"] & 0o7777 == mode, "%s: mode %o" % (path, a["mode"])
    # The symlink pointing outside was not followed.
    assert sha(secret.read_bytes()) not in {a["sha256"] for a in arts}


def test_outputs_download_reproduces_bytes(daemon, make_tree, ext, tmp_path):
    secret = ext / "secret.txt"
    secret.write_bytes(b"outside\n")
    src, expected = writer_tree(make_tree)
    sub = daemon.submit(src, "w.py", str(secret))
    assert daemon.wait_terminal(sub["id"])["status"] == "Completed"

    dest = tmp_path / "download"
    daemon.cli("outputs", sub["id"], "--download", dest)
    got = {}
    for root, dirs, files in os.walk(dest):
        for f in files:
            p = os.path.join(root, f)
            got[os.path.relpath(p, dest)] = p
    for path, (data, mode) in expected.items():
        # Accept the artifact path as is, or relative to outputs/.
        short = path[len("outputs/"):] if path.startswith("outputs/") else path
        where = got.get(path) or got.get(short)
        assert where, "%s not downloaded; got %s" % (path, sorted(got))
        with open(where, "rb") as f:
            assert f.read() == data, path
    for p in got.values():
        with open(p, "rb") as f:
            assert f.read() != secret.read_bytes()


def test_artifact_read_in_chunks(daemon, make_tree, ext):
    secret = ext / "s"
    secret.write_bytes(b"s")
    src, _ = writer_tree(make_tree)
    sub = daemon.submit(src, "w.py", str(secret))
    assert daemon.wait_terminal(sub["id"])["status"] == "Completed"
    data, offset = b"", 0
    while True:
        part = daemon.rpc("artifact.read", {"run": sub["id"], "path": "outputs/sub/big.bin",
                                            "offset": offset, "length": 1 << 20})
        assert part["size"] == len(BIG)
        chunk = base64.b64decode(part["data"])
        assert len(chunk) <= 1 << 20
        data += chunk
        offset += len(chunk)
        if part["eof"]:
            break
        assert chunk, "no progress before eof"
    assert data == BIG
