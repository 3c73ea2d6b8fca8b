"""Snapshot limits (per daemon, per submit) and dry runs."""

import os
import subprocess

from conftest import PY, RUNYARDD


def blob_count(daemon):
    root = daemon.state_dir / "blobs" / "sha256"
    return sum(len(files) for _, _, files in os.walk(root)) if root.exists() else 0


def big_tree(make_tree):
    """Twelve large files, the largest in data/, many small ones in logs/."""
    files = {"train.py": "print('hi')\n"}
    for i in range(12):
        files["data/part%02d.bin" % i] = b"d" * (100_000 + i * 1000)
    for i in range(30):
        files["logs/l%02d.txt" % i] = "x\n"
    files["model.ckpt"] = b"m" * 150_000
    return make_tree(files)


def test_over_the_byte_limit_names_what_is_large(daemon, make_tree):
    src = big_tree(make_tree)
    before = blob_count(daemon)
    res = daemon.cli("submit", "--source", src, "--max-snapshot-mb", "0.5", "--python", PY,
                     "--", "train.py", check=2)
    err = res.stderr
    assert "(TooLarge)" in err, err
    assert "over the limit of 500.0 kB / 2000 files" in err
    # The ten largest files, largest first.
    largest = err.split("largest files: ")[1].split(";")[0].split(", ")
    assert len(largest) == 10, largest
    assert largest[0] == "model.ckpt (150.0 kB)"
    assert largest[1] == "data/part11.bin (111.0 kB)"
    assert "largest directories: data/ (1.3 MB in 12 files)" in err
    assert "add patterns such as '/data/'" in err and "to .amlignore" in err
    # Nothing stored, no run.
    assert blob_count(daemon) == before
    assert daemon.runs() == []


def test_over_the_file_limit_names_the_directory_with_many_files(daemon, make_tree):
    src = big_tree(make_tree)
    res = daemon.cli("submit", "--source", src, "--max-snapshot-files", "20", "--python", PY,
                     "--", "train.py", check=2)
    assert "over the limit of 300.0 MB / 20 files" in res.stderr
    assert "largest directories: logs/ (60 B in 30 files)" in res.stderr
    assert "add patterns such as '/logs/'" in res.stderr
    # Within the limits once logs/ is ignored.
    (src / ".amlignore").write_text("logs/\n")
    res = daemon.cli("submit", "--source", src, "--max-snapshot-files", "20", "--python", PY,
                     "--", "train.py", json=True)
    assert res.json["files"] == 15  # train.py, 12 parts, model.ckpt, .amlignore
    daemon.wait_terminal(res.json["id"])


def test_daemon_limits_and_per_submit_override(daemon_factory, make_tree):
    src = big_tree(make_tree)
    d = daemon_factory(extra=["--snapshot-max-mb", "0.2", "--snapshot-max-files", "100"])
    res = d.cli("submit", "--source", src, "--python", PY, "--", "train.py", check=2)
    assert "over the limit of 200.0 kB / 100 files" in res.stderr
    # The submit's own limit wins.
    res = d.cli("submit", "--source", src, "--python", PY, "--max-snapshot-mb", "5", "--",
                "train.py", json=True)
    d.wait_terminal(res.json["id"])
    res = d.cli("submit", "--source", src, "--python", PY, "--max-snapshot-mb", "5",
                "--max-snapshot-files", "10", "--", "train.py", check=2)
    assert "/ 10 files" in res.stderr


def test_bad_limit_values_are_refused(daemon, make_tree, tmp_path):
    src = make_tree({"a.py": ""})
    for flag, value in (("--max-snapshot-mb", "0"), ("--max-snapshot-mb", "lots"),
                        ("--max-snapshot-files", "0"), ("--max-snapshot-files", "1.5")):
        res = daemon.cli("submit", "--source", src, flag, value, "--", "a.py", check=1)
        assert flag in res.stderr
    for flag, value in (("--snapshot-max-mb", "-1"), ("--snapshot-max-files", "x")):
        proc = subprocess.run([str(RUNYARDD), "--state-dir", str(tmp_path / "s"), flag, value],
                              capture_output=True, text=True, timeout=30)
        assert proc.returncode == 1 and flag in proc.stderr


def test_dry_run_lists_what_would_be_taken_and_creates_nothing(daemon, make_tree):
    src = make_tree({".amlignore": "*.tmp\n", "train.py": "print(1)\n", "a.tmp": "x",
                     "pkg/mod.py": "x = 1\n", "pkg/data.bin": b"\0" * 2048})
    os.symlink("train.py", src / "link")
    os.mkfifo(src / "fifo")
    before = blob_count(daemon)
    res = daemon.cli("submit", "--dry-run", "--source", src)
    out = res.stdout.splitlines()
    assert [line[12:] for line in out[:-1]] == [
        ".amlignore", "link -> train.py", "pkg/", "pkg/data.bin", "pkg/mod.py", "train.py"]
    assert out[3].split()[:2] == ["2.0", "KiB"]
    assert out[-1].startswith("Would take 4 files (2.0 KiB), 1 directory, 1 symlink from ")
    assert "nothing was stored" in out[-1]
    assert "would skip fifo (fifo)" in res.stderr
    assert "a.tmp" not in res.stdout
    # No run, no blob, no program needed.
    assert daemon.runs() == [] and blob_count(daemon) == before
    j = daemon.cli("submit", "--dry-run", "--source", src, json=True).json
    assert j["dry_run"] is True and j["files"] == 4 and j["bytes"] == 2048 + 9 + 6 + 6
    assert j["over_limit"] is None
    assert {e["path"]: e["type"] for e in j["entries"]} == {
        ".amlignore": "file", "link": "symlink", "pkg": "dir", "pkg/data.bin": "file",
        "pkg/mod.py": "file", "train.py": "file"}


def test_dry_run_over_a_limit_says_the_submit_would_fail(daemon, make_tree):
    src = big_tree(make_tree)
    res = daemon.cli("submit", "--dry-run", "--source", src, "--max-snapshot-files", "5",
                     check=2)
    assert "the submit would fail: snapshot of" in res.stderr
    assert "(TooLarge)" in res.stderr
    assert "Would take 44 files" in res.stdout
    res = daemon.cli("submit", "--dry-run", "--source", src, "--max-snapshot-files", "5",
                     json=True, check=2)
    assert daemon.runs() == []
    res = daemon.cli("submit", "--dry-run", "--wait", "--source", src, check=1)
    assert "--dry-run" in res.stderr
