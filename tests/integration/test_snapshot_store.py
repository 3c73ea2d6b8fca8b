"""Content addressing, the stat cache and materialising."""

import hashlib
import json
import os
import time

from conftest import WAIT_FILE, script


def blobs(daemon):
    root = daemon.state_dir / "blobs" / "sha256"
    return {d + f for d in os.listdir(root) for f in os.listdir(root / d)}


def rchar(pid):
    """Bytes the process has read with read() and friends so far."""
    with open("/proc/%d/io" % pid) as f:
        for line in f:
            if line.startswith("rchar:"):
                return int(line.split()[1])
    raise AssertionError("no rchar in /proc/%d/io" % pid)


def settle():
    """Let file timestamps age past the stat cache's racy window (100 ms)."""
    time.sleep(0.3)


def test_resubmit_adds_nothing_and_one_change_adds_one_blob(daemon, make_tree):
    src = make_tree({"a.py": "print(1)\n", "b.txt": "b\n", "sub/c.txt": "c\n"})
    settle()
    one = daemon.submit(src, "a.py")
    after_one = blobs(daemon)
    # The snapshot id is the manifest's hash, and the manifest is a blob.
    assert one["snapshot"] in after_one
    manifest = json.loads((daemon.state_dir / "blobs" / "sha256" / one["snapshot"][:2] /
                           one["snapshot"][2:]).read_bytes())
    for e in manifest["entries"]:
        if e["type"] == "file":
            data = (src / e["path"]).read_bytes()
            assert e["sha256"] == hashlib.sha256(data).hexdigest()
            assert e["sha256"] in after_one

    two = daemon.submit(src, "a.py")
    assert two["snapshot"] == one["snapshot"]
    assert blobs(daemon) == after_one
    assert two["new_blobs"] == 0

    (src / "b.txt").write_text("changed\n")
    three = daemon.submit(src, "a.py")
    added = blobs(daemon) - after_one
    assert added == {hashlib.sha256(b"changed\n").hexdigest(), three["snapshot"]}
    assert three["new_blobs"] == 1
    for r in (one, two, three):
        daemon.wait_terminal(r["id"])


def test_unchanged_resubmit_reads_nothing(daemon_factory, make_tree, ext):
    """The stat cache: an unchanged tree is not read again (the daemon's
    read byte count hardly moves), a changed file is."""
    daemon = daemon_factory(max_runs=1)
    go = ext / "go"
    big = os.urandom(1 << 20)
    files = {"a.py": WAIT_FILE + "wait_file(%r)\n" % str(go)}
    for i in range(24):
        files["data/f%02d.bin" % i] = big[i:] + bytes([i])
    src = make_tree(files)
    settle()
    first = daemon.submit(src, "a.py")
    assert first["read_files"] == 25
    # The first run holds the only slot: the next ones stay queued, so
    # nothing is materialised (which reads blobs) while counting.
    daemon.wait_status(first["id"], "Running")
    before = rchar(daemon.pid)
    again = daemon.submit(src, "a.py")
    read = rchar(daemon.pid) - before
    assert again["snapshot"] == first["snapshot"]
    assert again["read_files"] == 0 and again["cached_files"] == 25, again
    assert read < 4 << 20, "an unchanged resubmit read %d bytes of a 24 MB tree" % read

    # The same size, the old mtime put back: the ctime still tells.
    p = src / "data" / "f03.bin"
    st = p.stat()
    p.write_bytes(b"Z" * st.st_size)
    os.utime(p, ns=(st.st_atime_ns, st.st_mtime_ns))
    settle()
    before = rchar(daemon.pid)
    third = daemon.submit(src, "a.py")
    read = rchar(daemon.pid) - before
    assert third["snapshot"] != first["snapshot"]
    assert third["read_files"] == 1 and third["cached_files"] == 24
    assert (1 << 20) <= read < 5 << 20, read
    go.write_text("")
    for r in (first, again, third):
        assert daemon.wait_terminal(r["id"])["status"] == "Completed"


def test_a_file_written_just_now_is_read_again(daemon, make_tree):
    """Racily clean: a file modified within the cache's window may change
    again unseen in the same timestamp tick, so it is hashed again."""
    src = make_tree({"a.py": "print(1)\n"})
    one = daemon.submit(src, "a.py")  # no settle(): a.py is a few ms old
    two = daemon.submit(src, "a.py")
    assert two["snapshot"] == one["snapshot"]
    assert one["read_files"] == 1
    settle()
    three = daemon.submit(src, "a.py")
    four = daemon.submit(src, "a.py")
    assert four["cached_files"] == 1 and four["read_files"] == 0
    for r in (one, two, three, four):
        daemon.wait_terminal(r["id"])


def test_a_run_writing_its_files_never_touches_the_store(daemon, make_tree):
    """Materialised files are copies (never hard links into the store): a run
    that rewrites them leaves the snapshot intact for the next run."""
    src = make_tree({
        "data.txt": "original\n",
        "mutate.py": script("""
            import os
            st = os.stat("data.txt")
            print("LINKS", st.st_nlink)
            print("WAS", open("data.txt").read().strip())
            with open("data.txt", "r+") as f:
                f.write("CLOBBER!!")
            os.chmod("data.txt", 0o666)
        """),
    })
    one = daemon.submit(src, "mutate.py")
    assert daemon.wait_terminal(one["id"])["status"] == "Completed"
    two = daemon.submit(src, "mutate.py")
    assert daemon.wait_terminal(two["id"])["status"] == "Completed"
    for r in (one, two):
        texts = [l["text"] for l in daemon.logs(r["id"])]
        assert "LINKS 1" in texts and "WAS original" in texts, texts
    blob = daemon.state_dir / "blobs" / "sha256"
    h = hashlib.sha256(b"original\n").hexdigest()
    assert (blob / h[:2] / h[2:]).read_bytes() == b"original\n"
