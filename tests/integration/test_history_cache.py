"""The download cache's bound (--cache-max-size, least recently used out
first, never what was just handed out) and runyard cache ls|clear."""

import os
import subprocess
import time

from conftest import RUNYARDD, wait_for

MB = 1024 * 1024


def objects_dir(d):
    return d.state_dir / "downloads" / "objects"


def age(d, sha, seconds_ago):
    """As if the object was last handed out that long ago."""
    t = time.time() - seconds_ago
    os.utime(objects_dir(d) / sha, (t, t))


def register(d, name, path):
    return d.cli("dataset", "register", name, "file://%s" % path, json=True).json


def cached(d):
    return {o["sha256"]: o for o in d.cli("cache", "ls", json=True).json["objects"]}


def test_cache_bound_evicts_least_recently_used_and_keeps_what_was_just_used(daemon_factory,
                                                                             tmp_path):
    d = daemon_factory(extra=["--cache-max-size", "3M"])
    files = []
    for i in range(4):
        f = tmp_path / ("in%d.bin" % i)
        f.write_bytes(os.urandom(MB))
        files.append(f)
    for i, f in enumerate(files[:3]):
        register(d, "ds%d" % i, f)
    objs = cached(d)
    assert len(objs) == 3 and all(o["in_use"] for o in objs.values())
    shas = list(objs)
    # all just handed out: the 4th takes the cache over its bound, and
    # nothing may go yet
    by_file = {}
    for sha, o in objs.items():
        by_file[o["urls"][0]] = sha
    register(d, "ds3", files[3])
    time.sleep(0.5)
    assert len(cached(d)) == 4
    # an hour ago, two hours ago, three hours ago: the oldest goes first
    for i in range(3):
        age(d, by_file["file://%s" % files[i]], 3600 * (3 - i))
    f5 = tmp_path / "in5.bin"
    f5.write_bytes(os.urandom(MB))
    register(d, "ds5", f5)
    wait_for(lambda: len(cached(d)) == 3, what="the cache to be trimmed to its bound")
    left = cached(d)
    assert by_file["file://%s" % files[0]] not in left
    assert by_file["file://%s" % files[1]] not in left
    assert by_file["file://%s" % files[2]] in left
    assert sum(o["size"] for o in left.values()) <= 3 * MB
    # the datasets keep their own copies; a URL asked for again comes again
    out = tmp_path / "out0"
    d.cli("dataset", "download", "ds0:1", "-o", out)
    assert (out / "in0.bin").read_bytes() == files[0].read_bytes()
    register(d, "ds0", files[0])
    assert by_file["file://%s" % files[0]] in cached(d)
    text = d.cli("cache", "ls").stdout
    assert "Download cache:" in text and "bound: 3.0 MiB" in text or "bound: 3" in text
    assert shas  # listed before


def test_cache_clear_and_a_lower_bound_at_start(daemon_factory, tmp_path):
    d = daemon_factory()
    files = []
    for i in range(3):
        f = tmp_path / ("c%d.bin" % i)
        f.write_bytes(os.urandom(200000))
        files.append(f)
        register(d, "c%d" % i, f)
    objs = cached(d)
    assert len(objs) == 3
    res = d.cli("cache", "clear", json=True).json
    assert res["removed"] == 0 and res["kept_in_use"] == 3
    for sha in objs:
        age(d, sha, 7200)
    # one of them used again just now: it stays
    register(d, "c0", files[0])
    res = d.cli("cache", "clear", json=True).json
    assert res["removed"] == 2 and res["kept_in_use"] == 1 and res["bytes"] == 400000
    assert len(cached(d)) == 1
    assert "Removed 0 download(s)" in d.cli("cache", "clear").stdout
    # a lower bound at start trims what is old
    for sha in cached(d):
        age(d, sha, 7200)
    d.stop()
    d.extra = ["--cache-max-size", "100K"]
    d.restart()
    wait_for(lambda: cached(d) == {}, what="the start-up trim")


def test_bad_cache_size_stops_the_daemon_at_start(tmp_path):
    proc = subprocess.run([str(RUNYARDD), "--state-dir", str(tmp_path / "s"),
                           "--cache-max-size", "big"], capture_output=True, text=True,
                          timeout=30)
    assert proc.returncode == 1 and "--cache-max-size wants a size" in proc.stderr


def test_cache_ops_take_no_arguments_they_do_not_know(daemon):
    c = daemon.client()
    for op in ("cache.list", "cache.clear"):
        reply = c.request(op, {"whatever": 1})
        assert reply["ok"], reply  # unknown fields are ignored, as everywhere
    c.close()
