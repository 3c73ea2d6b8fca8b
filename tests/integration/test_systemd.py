"""runyardd under a service manager: units, socket activation, readiness,
status, watchdog, journal logging, and stop/start in the middle of runs."""

import os
import shutil
import signal
import socket
import subprocess
import tempfile
import time

import pytest

from conftest import BUILD, CLI, DEADLINE, PY, REPO, RUNYARDD, script, wait_for

ANALYZE = shutil.which("systemd-analyze")
ACTIVATE = shutil.which("systemd-socket-activate")


def units_for_build(tmp_path):
    """The installed units, pointed at this build's runyardd."""
    d = tmp_path / "units"
    d.mkdir()
    service = (BUILD / "systemd" / "runyard.service").read_text()
    service = service.replace("/usr/local/bin/runyardd", str(RUNYARDD))
    assert str(RUNYARDD) in service, "ExecStart was not substituted:\n" + service
    (d / "runyard.service").write_text(service)
    shutil.copy(REPO / "systemd" / "runyard.socket", d / "runyard.socket")
    return d


@pytest.mark.skipif(not ANALYZE, reason="systemd-analyze is not installed")
def test_units_verify(tmp_path):
    d = units_for_build(tmp_path)
    units = [str(d / "runyard.service"), str(d / "runyard.socket")]
    res = subprocess.run([ANALYZE, "verify"] + units, capture_output=True, text=True)
    assert res.returncode == 0, res.stdout + res.stderr
    # The user manager's view too, with a runtime directory of its own.
    rt = tmp_path / "rt"
    rt.mkdir(mode=0o700)
    res = subprocess.run([ANALYZE, "verify", "--user"] + units, capture_output=True, text=True,
                         env=dict(os.environ, XDG_RUNTIME_DIR=str(rt)))
    assert res.returncode == 0, res.stdout + res.stderr
    text = (d / "runyard.service").read_text()
    for want in ("Type=notify", "KillMode=process", "NoNewPrivileges=yes", "UMask=0077",
                 "ProtectSystem=strict", "PrivateTmp=yes", "SystemCallArchitectures=native",
                 "RestrictAddressFamilies=AF_UNIX AF_INET AF_INET6"):
        assert want in text, want


def start_activated(tmp_path, *listen, extra=()):
    sock_dir = tempfile.mkdtemp(prefix="ry-sa-", dir="/tmp")
    log = open(tmp_path / "activated.log", "wb")
    argv = [ACTIVATE]
    for name in listen:
        argv += ["-l", os.path.join(sock_dir, name)]
    argv += [str(RUNYARDD), "--state-dir", str(tmp_path / "state")] + list(extra)
    proc = subprocess.Popen(argv, stdin=subprocess.DEVNULL, stdout=log, stderr=log,
                            start_new_session=True)
    path = os.path.join(sock_dir, listen[0])
    wait_for(lambda: os.path.exists(path), what="the activator's socket")
    return proc, path, sock_dir, log


@pytest.mark.skipif(not ACTIVATE, reason="systemd-socket-activate is not installed")
def test_socket_activation_serves_on_the_passed_socket(tmp_path, make_tree):
    proc, path, sock_dir, log = start_activated(tmp_path, "sock")
    try:
        src = make_tree({"hi.py": "print('activated run')\n"})
        env = dict(os.environ, RUNYARD_SOCKET=path)
        # The first connection makes the activator exec runyardd with the
        # listening socket as fd 3.
        res = subprocess.run([str(CLI), "submit", "--source", str(src), "--python", PY,
                              "--wait", "--show-output", "--", "hi.py"],
                             capture_output=True, text=True, env=env, timeout=DEADLINE)
        assert res.returncode == 0, res.stdout + res.stderr
        assert "activated run" in res.stdout
        st = subprocess.run([str(CLI), "daemon", "status", "--json"], capture_output=True,
                            text=True, env=env, timeout=60)
        assert st.returncode == 0, st.stderr
        assert path in st.stdout
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(timeout=30) == 0
        # The socket belongs to the manager: runyardd leaves it in place.
        assert os.path.exists(path)
        text = (tmp_path / "activated.log").read_text()
        assert "socket-activated" in text, text
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
        log.close()
        shutil.rmtree(sock_dir, ignore_errors=True)


@pytest.mark.skipif(not ACTIVATE, reason="systemd-socket-activate is not installed")
def test_socket_activation_with_two_sockets_is_refused(tmp_path):
    proc, path, sock_dir, log = start_activated(tmp_path, "a", "b")
    try:
        try:
            socket.socket(socket.AF_UNIX).connect(path)
        except OSError:
            pass
        assert proc.wait(timeout=30) == 1
        text = (tmp_path / "activated.log").read_text()
        assert "passed 2 sockets" in text, text
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
        log.close()
        shutil.rmtree(sock_dir, ignore_errors=True)


class Notifications:
    """A test-owned NOTIFY_SOCKET."""

    def __init__(self):
        self.dir = tempfile.mkdtemp(prefix="ry-n-", dir="/tmp")
        self.path = os.path.join(self.dir, "notify")
        self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
        self.sock.bind(self.path)
        self.sock.setblocking(False)
        self.got = []

    def drain(self):
        # Only what is there now: watchdog pings never stop arriving.
        while True:
            try:
                self.got.append((time.monotonic(), self.sock.recv(4096).decode()))
            except BlockingIOError:
                return

    def wait(self, pred, what):
        def found():
            self.drain()
            return [m for _, m in self.got if pred(m)]
        return wait_for(found, what=what)

    def close(self):
        self.sock.close()
        shutil.rmtree(self.dir, ignore_errors=True)


def test_readiness_status_watchdog_and_stopping(daemon_factory, make_tree):
    n = Notifications()
    try:
        d = daemon_factory(max_runs=1, env={"NOTIFY_SOCKET": n.path, "WATCHDOG_USEC": "200000"})
        n.wait(lambda m: m == "READY=1", "READY=1")
        src = make_tree({"w.sh": script("""
            #!/bin/sh
            echo "NOTIFY=${NOTIFY_SOCKET:-none} LISTEN=${LISTEN_FDS:-none} JOURNAL=${JOURNAL_STREAM:-none}"
            sleep 1
            """)})
        a = d.submit(src, "./w.sh")
        d.submit(src, "./w.sh")
        n.wait(lambda m: m.startswith("STATUS=") and "1 queued" in m, "a STATUS= with a queued run")
        d.wait_terminal(a["id"])
        # The manager's variables are not handed to runs.
        assert any("NOTIFY=none LISTEN=none JOURNAL=none" in l["text"] for l in d.logs(a["id"]))
        # Pings at half of WATCHDOG_USEC (100 ms): several within a second.
        n.drain()
        t0 = time.monotonic()
        while time.monotonic() < t0 + 1.0:
            time.sleep(0.05)
            n.drain()
        pings = [t for t, m in n.got if m == "WATCHDOG=1" and t >= t0]
        assert len(pings) >= 4, "only %d watchdog pings in 1 s" % len(pings)
        d.stop()
        n.wait(lambda m: m == "STOPPING=1", "STOPPING=1")
    finally:
        n.close()


def test_journal_prefixes_and_log_level(daemon_factory):
    d = daemon_factory(env={"JOURNAL_STREAM": "8:12345"})
    d.stop()
    lines = [l for l in d.log_text().splitlines() if l.strip() and not l.startswith("=")]
    assert lines, "no log lines"
    for l in lines:
        assert l[0] == "<" and l[2] == ">", "no priority prefix: %r" % l
        assert not l[3:4].isdigit(), "a timestamp under the journal: %r" % l
    quiet = daemon_factory(extra=["--log-level", "error"])
    quiet.stop()
    assert "listening on" not in quiet.log_text()


def test_stop_and_start_in_the_middle_of_runs_loses_nothing(daemon_factory, make_tree):
    d = daemon_factory(max_runs=2)
    src = make_tree({"count.py": script("""
        import sys, time
        for i in range(40):
            print("line", i)
            time.sleep(0.05)
        """)})
    runs = [d.submit(src, "count.py")["id"] for _ in range(3)]
    d.wait_text(runs[0], "line 5")
    d.stop()   # SIGTERM: a clean stop, runs keep going under their supervisors
    time.sleep(0.5)
    d.start()
    for r in runs:
        assert d.wait_terminal(r)["status"] == "Completed"
        texts = [l["text"] for l in d.logs(r)]
        assert texts == ["line %d" % i for i in range(40)], texts


def test_first_use_starts_a_daemon_once(tmp_path):
    home = tmp_path / "home"
    home.mkdir()
    rt = tempfile.mkdtemp(prefix="ry-rt-", dir="/tmp")
    env = {k: v for k, v in os.environ.items()
           if k not in ("RUNYARD_SOCKET", "RUNYARD_NO_AUTOSTART")}
    env.update(HOME=str(home), XDG_STATE_HOME=str(home / "state"), XDG_RUNTIME_DIR=rt)

    def cli(*args, **kw):
        return subprocess.run([str(CLI)] + list(args), capture_output=True, text=True,
                              env=dict(env, **kw), timeout=DEADLINE)

    pid = None
    try:
        off = cli("runs", RUNYARD_NO_AUTOSTART="1")
        assert off.returncode == 1 and "cannot connect" in off.stderr, off.stderr
        first = cli("runs")
        assert first.returncode == 0, first.stderr
        assert "started runyardd in the background" in first.stderr, first.stderr
        st = cli("daemon", "status", "--json")
        assert st.returncode == 0, st.stderr
        import json
        status = json.loads(st.stdout)
        pid = status["pid"]
        assert status["socket"] == os.path.join(rt, "runyard", "runyard.sock")
        assert status["state_dir"] == str(home / "state" / "runyard")
        again = cli("runs")
        assert again.returncode == 0 and "started" not in again.stderr, again.stderr
        assert cli("daemon", "stop").returncode == 0
    finally:
        if pid:
            try:
                os.kill(pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
        shutil.rmtree(rt, ignore_errors=True)
