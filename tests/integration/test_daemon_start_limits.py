"""runyard daemon start passes the snapshot limits on to runyardd
(docs/cli.md, daemon start)."""

import json
import os
import shutil
import signal
import subprocess
import tempfile

from conftest import CLI, PY, RUNYARDD, pid_alive


def test_daemon_start_passes_the_snapshot_limits(tmp_path, make_tree):
    sock_dir = tempfile.mkdtemp(prefix="ry-", dir="/tmp")
    sock = os.path.join(sock_dir, "sock")
    state = tmp_path / "state"
    env = dict(os.environ, RUNYARD_DAEMON=str(RUNYARDD))
    env.pop("RUNYARD_SOCKET", None)

    def cli(*args):
        return subprocess.run([str(CLI), "--socket", sock] + [str(a) for a in args], env=env,
                              capture_output=True, text=True, timeout=120,
                              stdin=subprocess.DEVNULL)

    src = make_tree({"a.py": "print(1)\n", "b.txt": "b\n", "c.txt": "c\n",
                     "big.bin": b"x" * 600_000})
    pid = None
    try:
        for bad in (["--snapshot-max-mb", "0"], ["--snapshot-max-mb", "lots"],
                    ["--snapshot-max-files", "0"], ["--snapshot-max-files", "1.5"]):
            res = cli("daemon", "start", "--state-dir", state, *bad)
            assert res.returncode == 1 and bad[0] in res.stderr, res
            assert not os.path.exists(sock)
        res = cli("--json", "daemon", "start", "--state-dir", state,
                  "--snapshot-max-mb", "0.5", "--snapshot-max-files", "3")
        assert res.returncode == 0, res.stderr
        pid = json.loads(res.stdout)["pid"]
        res = cli("submit", "--source", src, "--python", PY, "--", "a.py")
        assert res.returncode == 2 and "(TooLarge)" in res.stderr, res
        assert "over the limit of 500.0 kB / 3 files" in res.stderr, res.stderr
        # Per submit, the daemon's limits are still overridden.
        res = cli("submit", "--source", src, "--python", PY, "--max-snapshot-mb", "1",
                  "--max-snapshot-files", "10", "--", "a.py")
        assert res.returncode == 0, res
        assert cli("daemon", "stop").returncode == 0
        pid = None
    finally:
        if pid is not None and pid_alive(pid):
            os.kill(pid, signal.SIGKILL)
        shutil.rmtree(sock_dir, ignore_errors=True)


def test_daemon_start_passes_the_life_cycle_options(tmp_path, make_tree):
    sock_dir = tempfile.mkdtemp(prefix="ry-", dir="/tmp")
    sock = os.path.join(sock_dir, "sock")
    state = tmp_path / "state"
    env = dict(os.environ, RUNYARD_DAEMON=str(RUNYARDD))
    env.pop("RUNYARD_SOCKET", None)

    def cli(*args):
        return subprocess.run([str(CLI), "--socket", sock] + [str(a) for a in args], env=env,
                              capture_output=True, text=True, timeout=120,
                              stdin=subprocess.DEVNULL)

    src = make_tree({"a.py": "print(1)\n"})
    pid = None
    try:
        for bad in (["--min-free", "lots"], ["--cache-max-size", "2X"],
                    ["--keep-runs", "0"], ["--keep-runs-days", "-3"]):
            res = cli("daemon", "start", "--state-dir", state, *bad)
            assert res.returncode == 1 and bad[0] in res.stderr, res
            assert not os.path.exists(sock)
        res = cli("--json", "daemon", "start", "--state-dir", state, "--min-free", "100000T",
                  "--warn-free", "100000T", "--cache-max-size", "1G", "--keep-runs", "5",
                  "--keep-runs-days", "30", "--keep-failed-days", "7")
        assert res.returncode == 0, res.stderr
        pid = json.loads(res.stdout)["pid"]
        res = cli("submit", "--source", src, "--python", PY, "--", "a.py")
        assert res.returncode == 2 and "--min-free" in res.stderr, res
        res = cli("--json", "cache", "ls")
        assert json.loads(res.stdout)["max_bytes"] == 1 << 30
        assert "submits are refused" in cli("daemon", "status").stdout
        assert cli("daemon", "stop").returncode == 0
        pid = None
    finally:
        if pid is not None and pid_alive(pid):
            os.kill(pid, signal.SIGKILL)
        shutil.rmtree(sock_dir, ignore_errors=True)
