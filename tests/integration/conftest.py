"""Fixtures for runyard's integration tests.

Each test starts a private runyardd on its own socket and state directory
(RUNYARD_BUILD names the build directory, default ./build), drives it with
the real CLI or with the raw protocol client in ryclient.py, and cleans up:
the daemon must stop with exit 0 on SIGTERM and its log must hold no
sanitizer report; run processes it leaves behind are killed.

Timing: tests poll for conditions with generous deadlines and never assert
on elapsed times, except coarse upper bounds that show nothing hung.
"""

import json as jsonlib
import os
import pathlib
import shutil
import signal
import subprocess
import sys
import tempfile
import textwrap
import time
from datetime import datetime

import pytest

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import ryclient  # noqa: E402

REPO = pathlib.Path(__file__).resolve().parents[2]
BUILD = pathlib.Path(os.environ.get("RUNYARD_BUILD", REPO / "build")).resolve()
RUNYARDD = BUILD / "daemon" / "runyardd"
CLI = BUILD / "cli" / "runyard"

# Debian's interpreter has numpy and scikit-learn; the python3 on PATH may not.
PY = "/usr/bin/python3"

TERMINAL = ("Completed", "Failed", "Canceled")
ORDER = ["Queued", "Preparing", "Scaling", "Running", "Finalizing",
         "CancelRequested", "Completed", "Failed", "Canceled"]

SANITIZER_MARKS = ("AddressSanitizer", "LeakSanitizer", "runtime error:",
                   "UndefinedBehaviorSanitizer")


def _is_sanitized(path):
    try:
        with open(path, "rb") as f:
            return b"__asan_init" in f.read()
    except OSError:
        return False


ASAN = _is_sanitized(RUNYARDD)
# Deadlines for conditions polled in tests: generous, and more so under ASan.
DEADLINE = 120.0 if ASAN else 60.0

# For tests that bound the daemon's memory: ASan keeps up to 256 MB of freed
# memory in quarantine (resident), which would hide what the daemon really
# holds; a small quarantine still catches use-after-free of recent frees.
SMALL_ASAN_QUARANTINE = ({"ASAN_OPTIONS": os.environ.get("ASAN_OPTIONS", "")
                          + ":quarantine_size_mb=16"} if ASAN else {})


def pytest_report_header(config):
    return "runyard build: %s%s" % (BUILD, " (sanitizers)" if ASAN else "")


def pytest_collection_modifyitems(config, items):
    if RUNYARDD.exists() and CLI.exists():
        return
    skip = pytest.mark.skip(reason="runyard is not built in %s" % BUILD)
    for item in items:
        item.add_marker(skip)


# -- small helpers ---------------------------------------------------------------


def wait_for(cond, timeout=DEADLINE, interval=0.05, what="a condition"):
    """Poll cond() until it returns something true; return that value."""
    end = time.monotonic() + timeout
    while True:
        value = cond()
        if value:
            return value
        if time.monotonic() > end:
            raise AssertionError("timed out after %.0fs waiting for %s" % (timeout, what))
        time.sleep(interval)


def parse_ts(s):
    """Parse the protocol's ISO 8601 UTC timestamps."""
    assert isinstance(s, str) and s.endswith("Z"), "not a UTC timestamp: %r" % (s,)
    return datetime.fromisoformat(s[:-1] + "+00:00")


def rss_kb(pid):
    """VmRSS of a process in kB."""
    with open("/proc/%d/status" % pid) as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    return 0


def pid_alive(pid):
    """True when pid exists and is not a zombie."""
    try:
        with open("/proc/%d/stat" % pid) as f:
            stat = f.read()
    except OSError:
        return False
    return stat.rsplit(")", 1)[1].split()[0] != "Z"


def script(text):
    """Dedent a script body written inline in a test."""
    return textwrap.dedent(text).lstrip()


# Python code the test scripts share: wait until a file exists.
WAIT_FILE = script("""
    import os, time
    def wait_file(path, limit=600):
        end = time.time() + limit
        while not os.path.exists(path):
            if time.time() > end:
                raise SystemExit("gave up waiting for " + path)
            time.sleep(0.02)
""")


# The daemon runs under this small reaper: a child subreaper that reaps every
# orphan below it (the machine's pid 1 may not) and writes the daemon's exit
# status to a file, so a test can kill -9 the daemon and still learn how it
# ended, and supervisors orphaned by a killed daemon do not linger as zombies.
REAPER = r"""
import ctypes, os, subprocess, sys
ctypes.CDLL(None, use_errno=True).prctl(36, 1, 0, 0, 0)  # PR_SET_CHILD_SUBREAPER
rcfile, logfile, argv = sys.argv[1], sys.argv[2], sys.argv[3:]
log = open(logfile, "ab", buffering=0)
d = subprocess.Popen(argv, stdin=subprocess.DEVNULL, stdout=log, stderr=log)
print(d.pid, flush=True)
while True:
    try:
        pid, status = os.wait()
    except ChildProcessError:
        break
    if pid == d.pid:
        with open(rcfile + ".tmp", "w") as f:
            f.write(str(os.waitstatus_to_exitcode(status)))
        os.rename(rcfile + ".tmp", rcfile)
"""


class CliResult:
    def __init__(self, argv, proc):
        self.argv = argv
        self.rc = proc.returncode
        self.stdout = proc.stdout
        self.stderr = proc.stderr
        self.json = None

    def __repr__(self):
        return "<runyard %s: rc=%d\nstdout: %s\nstderr: %s>" % (
            " ".join(self.argv[3:]), self.rc, self.stdout[-3000:], self.stderr[-3000:])


class Daemon:
    """One private runyardd and the means to drive it."""

    def __init__(self, root, max_runs=None, grace=None, socket_dir=None, extra=(), env=None):
        self.root = pathlib.Path(root)
        self.root.mkdir(parents=True, exist_ok=True)
        self.state_dir = self.root / "state"
        # Unix socket paths are short (108 bytes): keep the socket in /tmp.
        self.sock_dir = pathlib.Path(socket_dir or tempfile.mkdtemp(prefix="ry-", dir="/tmp"))
        self.socket = str(self.sock_dir / "sock")
        self.log_path = self.root / "daemon.log"
        self.max_runs = max_runs
        self.grace = grace
        self.extra = list(extra)
        self.env = dict(os.environ, **(env or {}))
        self.pid = None
        self.rcfile = None
        self.reapers = []
        self.starts = 0
        self._client = None

    # -- process ---------------------------------------------------------------

    def argv(self):
        argv = [str(RUNYARDD), "--state-dir", str(self.state_dir), "--socket", self.socket]
        if self.max_runs is not None:
            argv += ["--max-runs", str(self.max_runs)]
            # Every run reserves a CPU by default (docs/scheduling.md): a test
            # that asks for more runs at once than this machine has CPUs
            # declares as many, unless it chooses its CPUs itself.
            if self.max_runs > (os.cpu_count() or 1) and "--cpus" not in self.extra:
                argv += ["--cpus", str(self.max_runs)]
        if self.grace is not None:
            argv += ["--grace", str(self.grace)]
        return argv + self.extra

    def start(self):
        assert self.pid is None, "daemon already running"
        self.starts += 1
        self.rcfile = str(self.root / ("daemon-%d.rc" % self.starts))
        with open(self.log_path, "ab") as log:
            reaper = subprocess.Popen(
                [sys.executable, "-c", REAPER, self.rcfile, str(self.log_path)] + self.argv(),
                stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=log,
                start_new_session=True, env=self.env)
        self.reapers.append(reaper)
        line = reaper.stdout.readline()
        assert line.strip().isdigit(), "could not start runyardd\n%s" % self.log_tail()
        self.pid = int(line)
        wait_for(self._answers, what="runyardd to answer hello on %s" % self.socket)
        return self

    def _answers(self):
        if self.exit_code() is not None:
            raise AssertionError("runyardd exited with %s at start:\n%s"
                                 % (self.exit_code(), self.log_tail()))
        try:
            with ryclient.Client(self.socket, timeout=10) as c:
                c.hello()
            return True
        except (OSError, ryclient.Closed, TimeoutError):
            return False

    def exit_code(self):
        try:
            with open(self.rcfile) as f:
                return int(f.read())
        except FileNotFoundError:
            return None

    def running(self):
        return self.pid is not None and self.exit_code() is None

    def wait_exit(self, timeout=DEADLINE):
        """Wait for the daemon to exit; return its exit code."""
        wait_for(lambda: self.exit_code() is not None, timeout=timeout,
                 what="runyardd (pid %d) to exit" % self.pid)
        self.pid = None
        self._drop_client()
        return self.exit_code()

    def stop(self, timeout=30.0):
        """SIGTERM the daemon; it must exit 0 within timeout seconds."""
        pid = self.pid
        os.kill(pid, signal.SIGTERM)
        try:
            rc = self.wait_exit(timeout * (2 if ASAN else 1))
        except AssertionError:
            os.kill(pid, signal.SIGKILL)
            self.wait_exit(30)
            raise AssertionError("runyardd did not exit within %.0fs of SIGTERM\n%s"
                                 % (timeout, self.log_tail()))
        assert rc == 0, "runyardd exited with %d after SIGTERM\n%s" % (rc, self.log_tail())
        return rc

    def kill9(self):
        os.kill(self.pid, signal.SIGKILL)
        self.wait_exit(30)

    def restart(self):
        if self.running():
            self.stop()
        self.pid = None
        return self.start()

    def log_text(self):
        try:
            return self.log_path.read_text(errors="replace")
        except FileNotFoundError:
            return ""

    def log_tail(self, n=4000):
        return "--- runyardd log (%s) ---\n%s" % (self.log_path, self.log_text()[-n:])

    def sanitizer_reports(self):
        text = self.log_text()
        return [m for m in SANITIZER_MARKS if m in text]

    # -- clients -----------------------------------------------------------------

    def client(self, hello=True, timeout=60.0):
        """A new raw protocol connection."""
        return ryclient.Client(self.socket, timeout=timeout, hello=hello)

    def _drop_client(self):
        if self._client is not None:
            self._client.close()
            self._client = None

    def rpc(self, op, args=None):
        """Call an op on a connection kept open across calls."""
        if self._client is None:
            self._client = self.client()
        return self._client.call(op, args)

    def cli(self, *args, check=True, json=False, timeout=120, env=None, cwd=None):
        """Run the CLI against this daemon.

        check=True expects exit 0, an int expects that exit code, False
        checks nothing. json=True adds --json and parses stdout."""
        args = [str(a) for a in args]
        if json:
            at = args.index("--") if "--" in args else len(args)
            args.insert(at, "--json")
        argv = [str(CLI), "--socket", self.socket] + args
        full_env = dict(os.environ)
        full_env.pop("RUNYARD_SOCKET", None)
        full_env.update(env or {})
        proc = subprocess.run(argv, capture_output=True, text=True, timeout=timeout,
                              env=full_env, cwd=cwd, stdin=subprocess.DEVNULL)
        res = CliResult(argv, proc)
        want = 0 if check is True else check
        if check is not False:
            assert res.rc == want, "expected exit %d from %r" % (want, res)
        if json and res.rc == 0:
            try:
                res.json = jsonlib.loads(res.stdout)
            except ValueError as e:
                raise AssertionError("--json output does not parse (%s): %r" % (e, res))
        return res

    def submit(self, source, *command, python=PY, check=True, **opts):
        """runyard submit --json; opts: experiment, priority, timeout, env (dict), keep."""
        args = ["submit", "--source", source, "--python", python]
        if opts.get("experiment"):
            args += ["--experiment", opts["experiment"]]
        if opts.get("priority") is not None:
            args += ["--priority", opts["priority"]]
        if opts.get("timeout") is not None:
            args += ["--timeout", opts["timeout"]]
        for k, v in (opts.get("env") or {}).items():
            args += ["--env", "%s=%s" % (k, v)]
        if opts.get("keep"):
            args.append("--keep")
        res = self.cli(*args, "--", *command, json=True, check=check)
        return res.json if check is True else res

    # -- run state -----------------------------------------------------------------

    def show(self, run):
        return self.rpc("run.show", {"run": run})

    def status(self, run):
        return self.show(run)["status"]

    def wait_status(self, run, *statuses, timeout=DEADLINE):
        def reached():
            r = self.show(run)
            if r["status"] in statuses:
                return r
            if r["status"] in TERMINAL:
                raise AssertionError("run %s ended %s (error %s) while waiting for %s\n%s" % (
                    run, r["status"], r.get("error"), statuses, self.log_tail(1500)))
            return None
        return wait_for(reached, timeout=timeout, what="run %s to be %s" % (run, "/".join(statuses)))

    def wait_terminal(self, run, timeout=DEADLINE):
        def ended():
            r = self.show(run)
            return r if r["status"] in TERMINAL else None
        return wait_for(ended, timeout=timeout, what="run %s to end" % run)

    def logs(self, run, stream=None):
        """Every stored line of a run, through run.logs pages."""
        lines, after = [], 0
        while True:
            args = {"run": run, "after_seq": after}
            if stream:
                args["stream"] = stream
            page = self.rpc("run.logs", args)
            lines += page["lines"]
            after = page["next_seq"]
            if not page["more"]:
                return lines

    def wait_text(self, run, text, timeout=DEADLINE):
        """Wait until a stored line of the run contains text."""
        return wait_for(lambda: any(text in l["text"] for l in self.logs(run)), timeout=timeout,
                        what="%r in the logs of run %s" % (text, run))

    def runs(self):
        return self.rpc("run.list", {"limit": 100000})["runs"]

    # -- cleanup -----------------------------------------------------------------

    def leftovers(self):
        """Processes that belong to this daemon's runs (supervisors, run processes)."""
        marks = [str(self.state_dir).encode(), self.socket.encode()]
        skip = {os.getpid()} | {r.pid for r in self.reapers}
        if self.pid:
            skip.add(self.pid)
        found = []
        for name in os.listdir("/proc"):
            if not name.isdigit() or int(name) in skip:
                continue
            pid = int(name)
            try:
                with open("/proc/%d/cmdline" % pid, "rb") as f:
                    cmdline = f.read()
                with open("/proc/%d/environ" % pid, "rb") as f:
                    environ = f.read()
                cwd = os.readlink("/proc/%d/cwd" % pid).encode()
            except OSError:
                continue
            if not cmdline:
                continue  # zombie or kernel thread
            if any(m in cmdline or m in environ or cwd.startswith(m) for m in marks):
                found.append(pid)
        return found

    def kill_leftovers(self):
        own_groups = {os.getpgrp()} | {r.pid for r in self.reapers}
        for _ in range(20):
            pids = self.leftovers()
            if not pids:
                return
            for pid in pids:
                try:
                    pgid = os.getpgid(pid)
                    if pgid not in own_groups:
                        os.killpg(pgid, signal.SIGKILL)
                    os.kill(pid, signal.SIGKILL)
                except ProcessLookupError:
                    pass
            time.sleep(0.05)

    def teardown(self):
        errors = []
        self._drop_client()
        try:
            if self.running():
                self.stop()
        except AssertionError as e:
            errors.append(str(e))
        self.kill_leftovers()
        for r in self.reapers:
            try:
                r.wait(timeout=10)
            except subprocess.TimeoutExpired:
                r.kill()
                r.wait()
            r.stdout.close()
        found = self.sanitizer_reports()
        if found:
            errors.append("sanitizer report (%s) in the daemon's log\n%s"
                          % (", ".join(found), self.log_tail(20000)))
        shutil.rmtree(self.sock_dir, ignore_errors=True)
        if errors:
            raise AssertionError("\n".join(errors))


# -- fixtures ------------------------------------------------------------------------


@pytest.fixture
def daemon_factory(tmp_path):
    """Start private daemons: daemon_factory(max_runs=1, grace=1, socket_dir=..., env={...})."""
    started = []

    def make(**kw):
        d = Daemon(tmp_path / ("daemon%d" % len(started)), **kw)
        started.append(d)
        return d.start()

    yield make
    errors = []
    for d in started:
        try:
            d.teardown()
        except AssertionError as e:
            errors.append(str(e))
    if errors:
        pytest.fail("\n".join(errors), pytrace=False)


@pytest.fixture
def daemon(daemon_factory):
    """A private daemon with default settings."""
    return daemon_factory()


@pytest.fixture
def make_tree(tmp_path):
    """make_tree({"main.py": "...", "sub/x.txt": b"..."}, name="src") -> Path.

    Files ending in .sh are made executable; a value may be (content, mode)."""
    def make(files, name="src"):
        root = tmp_path / name
        root.mkdir(parents=True, exist_ok=True)
        for rel, content in files.items():
            mode = 0o755 if rel.endswith(".sh") else 0o644
            if isinstance(content, tuple):
                content, mode = content
            p = root / rel
            p.parent.mkdir(parents=True, exist_ok=True)
            if isinstance(content, str):
                content = content.encode()
            p.write_bytes(content)
            p.chmod(mode)
        return root
    return make


@pytest.fixture
def ext(tmp_path):
    """A directory outside every snapshot, for marker files."""
    d = tmp_path / "ext"
    d.mkdir()
    return d


def dumps(obj):
    return jsonlib.dumps(obj, indent=1, sort_keys=True)
