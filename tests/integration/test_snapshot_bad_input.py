"""Bad input to the snapshot ops gets a clear error and changes nothing."""

import os

import pytest

import ryclient


def blob_count(daemon):
    root = daemon.state_dir / "blobs" / "sha256"
    return sum(len(f) for _, _, f in os.walk(root)) if root.exists() else 0


def refused(daemon, op, args, code, words=()):
    with pytest.raises(ryclient.ProtocolError) as exc:
        daemon.rpc(op, args)
    assert exc.value.code == code, exc.value
    for w in words:
        assert w in exc.value.message, exc.value.message
    return exc.value.message


def test_bad_arguments(daemon, make_tree, tmp_path):
    src = make_tree({"a.py": "print(1)\n"})
    before = blob_count(daemon)
    refused(daemon, "run.submit", {"source": str(src), "dry_run": "yes"}, "InvalidArgument",
            ["dry_run"])
    refused(daemon, "run.submit", {"source": str(src)}, "InvalidArgument", ["command"])
    refused(daemon, "run.submit", {"source": "relative/dir", "command": ["a.py"]},
            "InvalidArgument", ["absolute"])
    os.mkfifo(tmp_path / "fifo")
    refused(daemon, "run.submit", {"source": str(tmp_path / "fifo"), "command": ["a.py"],
                                   "dry_run": True}, "InvalidArgument", ["neither"])
    refused(daemon, "run.submit", {"source": str(src), "command": ["a.py"],
                                   "max_snapshot_bytes": 0}, "InvalidArgument",
            ["max_snapshot_bytes"])
    refused(daemon, "ignore.check", {"source": "rel", "paths": ["a"]}, "InvalidArgument",
            ["absolute"])
    refused(daemon, "ignore.check", {"source": str(tmp_path / "nope"), "paths": ["a"]},
            "InvalidArgument", ["not a directory"])
    refused(daemon, "ignore.check", {"source": str(src), "paths": "a.py"}, "InvalidArgument",
            ["paths"])
    refused(daemon, "ignore.check", {"source": str(src), "paths": ["x"] * 10001}, "TooLarge")
    refused(daemon, "snapshot.export", {"run": 12345}, "NotFound")
    refused(daemon, "snapshot.export_read", {"export": 0}, "InvalidArgument", ["export"])
    refused(daemon, "snapshot.export_read", {"export": 999}, "NotFound", ["export"])
    assert daemon.runs() == [] and blob_count(daemon) == before


def test_a_damaged_stat_cache_or_a_blob_gone_is_no_harm(daemon, make_tree):
    """The stat cache only saves reading: damage it and the next submit reads."""
    import time
    src = make_tree({"a.py": "print(1)\n", "b.txt": "b\n"})
    time.sleep(0.3)
    one = daemon.submit(src, "a.py")
    cache = daemon.state_dir / "statcache"
    (f,) = list(cache.iterdir())
    data = bytearray(f.read_bytes())
    data[40] ^= 0xFF
    f.write_bytes(bytes(data))
    two = daemon.submit(src, "a.py")
    assert two["snapshot"] == one["snapshot"] and two["read_files"] == 2
    for r in (one, two):
        daemon.wait_terminal(r["id"])
