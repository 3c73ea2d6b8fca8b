"""Compute targets without a cluster: bad input changes nothing, and a stand-in
slurmrestd (fakeslurm.py) shows version discovery, refused credentials, the
token's handling, Slurm's states when a job ends without an exit status, and
the batched, backing-off poll."""

import shutil
import tempfile
import time

import pytest

import ryclient
from conftest import PY, wait_for
from fakeslurm import FakeSlurm


@pytest.fixture
def sockdir():
    d = tempfile.mkdtemp(prefix="ry-fake-", dir="/tmp")
    yield d
    shutil.rmtree(d, ignore_errors=True)


@pytest.fixture
def fake(sockdir):
    f = FakeSlurm(sockdir + "/rest.sock").start()
    yield f
    f.stop()


def error_of(d, op, args):
    with pytest.raises(ryclient.ProtocolError) as e:
        d.rpc(op, args)
    return e.value.code, e.value.message


def names(d):
    return [t["name"] for t in d.rpc("compute.list", {})["targets"]]


def test_create_bad_input_changes_nothing(daemon, tmp_path, sockdir):
    d = daemon
    base = {"name": "hpc", "type": "slurm", "rest": "unix:" + sockdir + "/none.sock"}
    afile = tmp_path / "file"
    afile.write_text("x")
    cases = [
        ({"type": "slurm", "rest": base["rest"]}, "InvalidArgument", "name"),
        (dict(base, name="local"), "Conflict", "built in"),
        (dict(base, name="bad name"), "InvalidArgument", "not valid"),
        (dict(base, type="kubernetes"), "InvalidArgument", "runyard knows: slurm"),
        (dict(base, rest="ftp://host"), "InvalidArgument", "unix:/path/to/socket"),
        (dict(base, rest="unix:relative.sock"), "InvalidArgument", "unix:/absolute/path"),
        (dict(base, rest="unix:/" + "x" * 200), "InvalidArgument", "longer than"),
        (dict(base, rest="http://"), "InvalidArgument", "not a valid"),
        (dict(base, rest=42), "InvalidArgument", "rest"),
        (dict(base, token_env="NOT_SET_ANYWHERE_XYZ"), "InvalidArgument", "is not set"),
        (dict(base, token_env="1BAD"), "InvalidArgument", "environment variable name"),
        (dict(base, user="me\r\nX-Evil: 1"), "InvalidArgument", "user name"),
        (dict(base, partition="a b"), "InvalidArgument", "partition"),
        (dict(base, shared_dir="relative"), "InvalidArgument", "absolute"),
        (dict(base, shared_dir=str(tmp_path / "missing")), "InvalidArgument",
         "No such file"),
        (dict(base, shared_dir=str(afile)), "InvalidArgument", "not a directory"),
        (dict(base, max_jobs=0), "InvalidArgument", "max_jobs"),
        (base, "Unavailable", "cannot reach slurmrestd"),
        (dict(base, rest="http://127.0.0.1:1"), "Unavailable", "cannot reach slurmrestd"),
    ]
    for args, code, text in cases:
        got, message = error_of(d, "compute.create", args)
        assert got == code and text in message, (args, got, message)
    assert names(d) == ["local"]
    code, message = error_of(d, "compute.show", {"name": "hpc"})
    assert code == "NotFound"
    code, message = error_of(d, "compute.delete", {"name": "hpc"})
    assert code == "NotFound"
    code, message = error_of(d, "compute.delete", {"name": "local"})
    assert code == "Conflict"
    d.restart()
    assert names(d) == ["local"]
    # The CLI says the same, with exit 2 for a refusal and 1 for a usage error.
    res = d.cli("compute", "create", "hpc", "--rest", base["rest"], check=2)
    assert "cannot reach slurmrestd" in res.stderr
    res = d.cli("compute", "create", "hpc", check=1)
    assert "--rest URL is required" in res.stderr


def test_submit_bad_target_input(daemon, make_tree):
    d = daemon
    src = make_tree({"x.py": "print(1)\n"})
    for extra, text in [(["--target", "nope"], "no compute target 'nope'"),
                        # Locally --cpus is a request of this machine (issue #17).
                        (["--cpus", "100000"], "this machine has"),
                        (["--memory-gb", "1"], "cluster target"),
                        (["--target", "local", "--time-limit", "5"], "cluster target")]:
        res = d.cli("submit", "--source", src, "--python", PY, *extra, "--", "x.py", check=2)
        assert text in res.stderr, res
    res = d.cli("submit", "--source", src, "--nodes", "0", "--", "x.py", check=1)
    assert "--nodes" in res.stderr
    assert d.runs() == []


def test_unknown_api_versions(daemon, sockdir):
    f = FakeSlurm(sockdir + "/rest.sock", versions=("v0.0.40", "v0.0.41")).start()
    try:
        code, message = error_of(daemon, "compute.create",
                                 {"name": "hpc", "type": "slurm", "rest": "unix:" + f.path})
    finally:
        f.stop()
    assert code == "InvalidArgument"
    assert "v0.0.40, v0.0.41" in message and "v0.0.38" in message, message
    assert names(daemon) == ["local"]


def test_credentials_refused(daemon, sockdir):
    f = FakeSlurm(sockdir + "/rest.sock", status=401).start()
    try:
        code, message = error_of(daemon, "compute.create",
                                 {"name": "hpc", "type": "slurm", "rest": "unix:" + f.path})
    finally:
        f.stop()
    assert code == "PermissionDenied" and "credentials" in message
    assert names(daemon) == ["local"]


def test_token_is_sent_never_stored(daemon_factory, fake):
    token = "eyJ-secret-token-4f1c"
    d = daemon_factory(env={"RY_SLURM_JWT": token})
    res = d.cli("compute", "create", "hpc", "--type", "slurm", "--rest", "unix:" + fake.path,
                "--token-env", "RY_SLURM_JWT", "--user", "alice", "--max-jobs", "3", json=True)
    assert res.json["token_env"] == "RY_SLURM_JWT" and res.json["max_jobs"] == 3
    assert token not in res.stdout
    headers = [h for m, p, h in fake.requests if p == "/slurm/v0.0.38/ping"][0]
    assert headers["X-SLURM-USER-TOKEN"] == token and headers["X-SLURM-USER-NAME"] == "alice"
    d.restart()
    assert names(d) == ["local", "hpc"]
    d.stop()
    for f in d.state_dir.iterdir():
        if f.is_file():
            assert token.encode() not in f.read_bytes(), f


def run_to(d, fake, make_tree, state, reason="None"):
    src = make_tree({"x.py": "print(1)\n"}, name="src-" + state)
    sub = d.cli("submit", "--source", src, "--python", PY, "--target", "hpc", "--", "x.py",
                json=True).json
    job = wait_for(lambda: fake.job_of(sub["id"]), what="the job to reach the fake")
    d.wait_status(sub["id"], "Scaling")
    fake.set_state(job["job_id"], state, reason)
    return sub["id"]


@pytest.fixture
def hpc_fake(daemon, fake):
    daemon.rpc("compute.create", {"name": "hpc", "type": "slurm", "rest": "unix:" + fake.path})
    return daemon


@pytest.mark.parametrize("state,status,code", [
    ("NODE_FAIL", "Failed", "NodeFail"),
    ("BOOT_FAIL", "Failed", "BootFail"),
    ("TIMEOUT", "Failed", "Timeout"),
    ("OUT_OF_MEMORY", "Failed", "OutOfMemory"),
    ("FAILED", "Failed", "JobFailed"),
    ("CANCELLED", "Canceled", None),
])
def test_job_ends_without_exit_status(hpc_fake, fake, make_tree, state, status, code):
    """A job that ends before its supervisor ran: Slurm's state says how the run ended."""
    d = hpc_fake
    run = d.wait_terminal(run_to(d, fake, make_tree, state))
    assert run["status"] == status, run
    assert (run["error"] or {}).get("code") == code, run["error"]
    if code:
        assert run["error"]["stage"] == "Scaling" and state in run["error"]["message"]
    assert "Running" not in run["transitions"]


def test_running_job_that_vanishes(hpc_fake, fake, make_tree):
    d = hpc_fake
    rid = run_to(d, fake, make_tree, "RUNNING")
    d.wait_status(rid, "Running")
    job = fake.job_of(rid)["job_id"]
    fake.set_state(job, "COMPLETING")
    time.sleep(2)
    assert d.status(rid) == "Running"  # not final yet
    fake.set_state(job, "FAILED", "NonZeroExitCode")
    run = d.wait_terminal(rid)
    assert run["status"] == "Failed" and run["error"]["code"] == "JobFailed"
    assert run["error"]["stage"] == "Running"


def test_cancel_while_pending_sends_delete(hpc_fake, fake, make_tree):
    d = hpc_fake
    rid = run_to(d, fake, make_tree, "PENDING")
    d.cli("cancel", rid)
    run = d.wait_terminal(rid)
    assert run["status"] == "Canceled"
    assert fake.count("DELETE", "/slurm/v0.0.38/job/") == 1


def test_poll_is_batched_and_backs_off(hpc_fake, fake, make_tree):
    d = hpc_fake
    for i in range(3):
        run_to(d, fake, make_tree, "PENDING")
    before = fake.count("GET", "/slurm/v0.0.38/jobs")
    time.sleep(12)
    polls = [p for m, p, _ in fake.requests
             if m == "GET" and p.startswith("/slurm/") and not p.endswith("/ping")]
    # One request per poll for all three jobs, never one per job; the interval
    # doubles from 1 s while nothing changes: about 1+2+4 s, then 8.
    assert all(p == "/slurm/v0.0.38/jobs" for p in polls), polls
    assert 2 <= fake.count("GET", "/slurm/v0.0.38/jobs") - before <= 6


def test_restart_while_a_submit_is_unanswered(hpc_fake, fake, make_tree):
    """The daemon dies after Slurm took the job but before it learned the job's id:
    after the restart the job is found by its name (the run's id), not submitted
    again, and the run goes on with it."""
    d = hpc_fake
    fake.submit_delay = 3
    src = make_tree({"x.py": "print(1)\n"})
    sub = d.cli("submit", "--source", src, "--python", PY, "--target", "hpc", "--", "x.py",
                json=True).json
    job = wait_for(lambda: fake.job_of(sub["id"]), what="the submit to reach the fake")
    d.kill9()
    fake.submit_delay = 0
    d.start()
    wait_for(lambda: d.show(sub["id"]).get("job_id"), what="the job to be found again")
    assert d.show(sub["id"])["job_id"] == job["job_id"]
    assert fake.count("POST", "/slurm/v0.0.38/job/submit") == 1
    assert "found its Slurm job %d" % job["job_id"] in d.log_text()
    fake.set_state(job["job_id"], "RUNNING")
    d.wait_status(sub["id"], "Running")
    d.cli("cancel", sub["id"])
    assert d.wait_terminal(sub["id"])["status"] == "Canceled"


def test_restart_while_a_submit_never_arrived(hpc_fake, fake, make_tree):
    """The same, but the job never reached Slurm: it is prepared and submitted again."""
    d = hpc_fake
    src = make_tree({"x.py": "print(1)\n"})
    sub = d.cli("submit", "--source", src, "--python", PY, "--target", "hpc", "--", "x.py",
                json=True).json
    job = wait_for(lambda: fake.job_of(sub["id"]), what="the submit to reach the fake")
    d.wait_status(sub["id"], "Scaling")
    d.stop()
    with fake.lock:  # as if Slurm had never seen it, and the id was never recorded
        del fake.jobs[job["job_id"]]
        fake.last_update = time.time()
    import sqlite3
    db = sqlite3.connect(str(d.state_dir / "runyard.db"))
    db.execute("UPDATE run_targets SET job_id = NULL")
    db.commit()
    db.close()
    d.start()
    again = wait_for(lambda: fake.job_of(sub["id"]), what="the job to be submitted again")
    assert fake.count("POST", "/slurm/v0.0.38/job/submit") == 2
    wait_for(lambda: d.show(sub["id"]).get("job_id") == again["job_id"],
             what="the new job id to be recorded")
    d.cli("cancel", sub["id"])
    assert d.wait_terminal(sub["id"])["status"] == "Canceled"
