"""The daemon itself: socket permissions, peers, stopping, --json on every verb."""

import json
import os
import shutil
import signal
import stat
import subprocess
import tempfile

import pytest

from conftest import CLI, PY, RUNYARDD, SANITIZER_MARKS, WAIT_FILE, pid_alive, script


def test_socket_mode_is_0600(daemon):
    st = os.stat(daemon.socket)
    assert stat.S_ISSOCK(st.st_mode)
    assert stat.S_IMODE(st.st_mode) == 0o600, oct(st.st_mode)


PEER = script("""
    import json, socket, struct, sys
    s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    s.settimeout(20)
    s.connect(sys.argv[1])
    p = json.dumps({"id": 1, "op": "hello", "args": {"proto": 1, "client": "intruder"}}).encode()
    try:
        s.sendall(b"RYD1" + struct.pack(">I", len(p)) + p)
        data = s.recv(65536)
    except (ConnectionResetError, BrokenPipeError):
        data = b""
    except socket.timeout:
        print("TIMEOUT"); sys.exit(0)
    print("CLOSED" if not data else "REPLY " + repr(data))
""")


@pytest.mark.skipif(os.geteuid() != 0, reason="needs root to act as another user")
def test_connection_from_another_uid_is_refused(daemon_factory):
    # The socket lives in a directory that "nobody" may enter.
    sock_dir = tempfile.mkdtemp(prefix="ry-", dir="/tmp")
    os.chmod(sock_dir, 0o755)
    d = daemon_factory(socket_dir=sock_dir)
    os.chmod(d.socket, 0o666)
    res = subprocess.run([PY, "-c", PEER, d.socket], user=65534, group=65534,
                         capture_output=True, text=True, timeout=60)
    assert res.returncode == 0, res.stderr
    assert res.stdout.strip() == "CLOSED", res.stdout
    # The owner is still served.
    with d.client() as c:
        assert c.call("daemon.status")["pid"] == d.pid


def test_daemon_status_and_stop_from_the_cli(daemon):
    st = daemon.cli("daemon", "status", json=True).json
    assert st["pid"] == daemon.pid
    assert st["proto"] == 1
    assert os.path.realpath(st["state_dir"]) == os.path.realpath(daemon.state_dir)
    assert os.path.realpath(st["socket"]) == os.path.realpath(daemon.socket)
    assert isinstance(st["counts"], dict)
    daemon.cli("daemon", "stop")
    assert daemon.wait_exit() == 0
    # Nobody answers now: a connection error is exit 1.
    daemon.cli("daemon", "status", check=1)
    daemon.cli("runs", check=1)


def test_sigterm_exits_promptly_with_a_watcher_connected(daemon, make_tree, ext):
    go = ext / "never"
    src = make_tree({"w.py": WAIT_FILE + "import sys\nprint('up')\nwait_file(sys.argv[1])\n"})
    sub = daemon.submit(src, "w.py", str(go))
    daemon.wait_text(sub["id"], "up")
    watcher = daemon.client()
    watcher.call("run.watch", {"run": sub["id"]})
    idle = daemon.client()  # and a connection that is doing nothing
    daemon.stop(timeout=20)
    watcher.close()
    idle.close()


def test_client_dying_mid_watch(daemon, make_tree, ext):
    go = ext / "go"
    src = make_tree({"w.py": WAIT_FILE + script("""
        import sys
        wait_file(sys.argv[1])
        for i in range(20000):
            print("line %d" % i)
    """)})
    sub = daemon.submit(src, "w.py", str(go))
    for i in range(5):
        c = daemon.client()
        c.call("run.watch", {"run": sub["id"]})
        if i == 0:
            go.write_text("")
        if i % 2:
            c.abort()
        else:
            c.close()
    run = daemon.wait_terminal(sub["id"])
    assert run["status"] == "Completed"
    assert run["log_lines"] == 20000
    assert daemon.rpc("daemon.status")["pid"] == daemon.pid


def test_json_output_parses_for_every_verb(daemon_factory, make_tree, ext, tmp_path):
    d = daemon_factory(max_runs=1)
    go = ext / "go"
    src = make_tree({
        "w.py": WAIT_FILE + "import sys\nprint('hi')\nwait_file(sys.argv[1])\n"
                "open('outputs/o.txt', 'w').write('o')\n",
        "q.py": "print('q')\n",
    })
    a = d.cli("submit", "--source", src, "--python", PY, "--", "w.py", str(go), json=True).json
    assert a["status"] == "Queued"
    b = d.cli("submit", "--source", src, "--python", PY, "--", "q.py", json=True).json
    assert d.cli("cancel", b["id"], json=True).json["status"] == "Canceled"
    d.wait_text(a["id"], "hi")
    go.write_text("")
    w = d.cli("wait", a["id"], json=True).json
    assert w["id"] == a["id"] and w["status"] == "Completed"
    assert w["transitions"]["Completed"]
    assert isinstance(d.cli("runs", json=True).json["runs"], list)
    assert d.cli("show", a["id"], json=True).json["id"] == a["id"]
    assert [l["text"] for l in d.cli("logs", a["id"], json=True).json] == ["hi"]
    arts = d.cli("outputs", a["id"], json=True).json["artifacts"]
    assert [x["path"] for x in arts if x["path"].startswith("outputs/")] == ["outputs/o.txt"]
    json_dl = d.cli("outputs", a["id"], "--download", tmp_path / "dl", json=True)
    assert json_dl.json is not None
    assert d.cli("experiments", json=True).json["experiments"][0]["name"] == "default"
    assert d.cli("daemon", "status", json=True).json["pid"] == d.pid
    c = d.cli("submit", "--source", src, "--python", PY, "--wait", "--", "q.py", json=True).json
    assert c["status"] == "Completed"


def test_daemon_start_and_stop_from_the_cli(tmp_path):
    sock_dir = tempfile.mkdtemp(prefix="ry-", dir="/tmp")
    sock = os.path.join(sock_dir, "sock")
    state = tmp_path / "state"
    env = dict(os.environ, RUNYARD_DAEMON=str(RUNYARDD))
    env.pop("RUNYARD_SOCKET", None)

    def cli(*args):
        return subprocess.run([str(CLI), "--socket", sock, "--json"] + list(args), env=env,
                              capture_output=True, text=True, timeout=120,
                              stdin=subprocess.DEVNULL)

    pid = None
    try:
        res = cli("daemon", "start", "--state-dir", str(state), "--max-runs", "3")
        assert res.returncode == 0, res.stderr
        started = json.loads(res.stdout)
        assert started["started"] is True
        pid = started["pid"]
        again = cli("daemon", "start", "--state-dir", str(state))
        assert again.returncode == 0 and json.loads(again.stdout)["started"] is False
        # Other flags than the running daemon's are not silently ignored.
        other = cli("daemon", "start", "--state-dir", str(state), "--max-runs", "5")
        assert other.returncode == 2 and "already running with --max-runs 3" in other.stderr
        same = cli("daemon", "start", "--state-dir", str(state), "--max-runs", "3")
        assert same.returncode == 0
        st = json.loads(cli("daemon", "status").stdout)
        assert st["pid"] == pid and st["max_runs"] == 3
        res = cli("daemon", "stop")
        assert res.returncode == 0, res.stderr
        assert json.loads(res.stdout)["stopped"] is True
        assert not pid_alive(pid)
        pid = None
        assert cli("daemon", "status").returncode == 1
        log = (state / "runyardd.log").read_text()
        assert not [m for m in SANITIZER_MARKS if m in log], log
    finally:
        if pid is not None and pid_alive(pid):
            os.kill(pid, signal.SIGKILL)
        shutil.rmtree(sock_dir, ignore_errors=True)
