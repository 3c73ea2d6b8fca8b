"""The Slurm compute target against a real one-node cluster.

scripts/slurm-cluster.sh installs Debian's Slurm when it is missing and
starts munged, slurmctld, slurmd and slurmrestd (on a Unix socket) under a
temporary directory, once for this module; every process it started is
stopped at the end. Where the cluster cannot start, the tests skip and say
why. Each test starts its own runyardd and points a target 'hpc' at the
cluster; runs' directories are under the daemon's state directory, which
the node (this machine) sees at the same path.
"""

import os
import shutil
import subprocess
import time

import pytest

from conftest import ASAN, PY, REPO, TERMINAL, WAIT_FILE, script, wait_for

CLUSTER = REPO / "scripts" / "slurm-cluster.sh"
DEADLINE = 90.0 if ASAN else 60.0


class Cluster:
    def __init__(self, sock):
        self.sock = sock
        self.dir = os.path.dirname(sock)
        self.env = dict(os.environ, SLURM_CONF=os.path.join(self.dir, "slurm.conf"))

    def run(self, *argv):
        return subprocess.run(list(argv), capture_output=True, text=True, env=self.env,
                              timeout=60)

    def job_state(self, job_id):
        out = self.run("scontrol", "-o", "show", "job", str(job_id)).stdout
        for word in out.split():
            if word.startswith("JobState="):
                return word.split("=", 1)[1]
        return None

    def jobs(self):
        out = self.run("squeue", "-h", "-o", "%i %T").stdout
        return dict(line.split() for line in out.splitlines() if line.strip())

    def jobs_named(self, name):
        out = self.run("squeue", "-h", "-t", "all", "--name", name, "-o", "%i").stdout
        return out.split()

    def cancel_all(self):
        ids = list(self.jobs())
        if ids:
            self.run("scancel", *ids)

    def script(self, *args):
        return subprocess.run(["bash", str(CLUSTER)] + list(args), capture_output=True,
                              text=True, timeout=600)


@pytest.fixture(scope="module")
def cluster():
    proc = subprocess.run(["bash", str(CLUSTER), "start"], capture_output=True, text=True,
                          timeout=900)
    if proc.returncode != 0 or not proc.stdout.strip():
        pytest.skip("the one-node Slurm cluster could not start here (scripts/slurm-cluster.sh "
                    "start exited %d): %s" % (proc.returncode, proc.stderr.strip()[-1500:]))
    c = Cluster(proc.stdout.strip().splitlines()[-1])
    yield c
    c.script("stop", c.dir)
    shutil.rmtree(c.dir, ignore_errors=True)


@pytest.fixture
def hpc(cluster, daemon_factory):
    """A daemon with target 'hpc' on the cluster; jobs left over are canceled after."""
    d = daemon_factory(grace=2)
    res = d.cli("compute", "create", "hpc", "--type", "slurm", "--rest",
                "unix:" + cluster.sock, json=True)
    assert res.json["api"] == "v0.0.38", res.json
    yield d
    cluster.cancel_all()


def submit(d, source, *command, **opts):
    args = ["submit", "--source", source, "--python", PY, "--target", opts.pop("target", "hpc")]
    for k in ("cpus", "nodes", "memory_gb", "time_limit", "timeout"):
        if opts.get(k) is not None:
            args += ["--" + k.replace("_", "-"), opts[k]]
    res = d.cli(*args, "--", *command, json=True)
    return res.json


def wait_end(d, run):
    return wait_for(lambda: (lambda r: r if r["status"] in TERMINAL else None)(d.show(run)),
                    timeout=DEADLINE, what="run %s to end" % run)


def test_completes_with_logs_metrics_outputs(hpc, cluster, make_tree):
    d = hpc
    src = make_tree({"train.py": script("""
        import os, sys
        from azureml.core.run import Run
        run = Run.get_context()
        print("job", os.environ.get("SLURM_JOB_ID"), "in", os.getcwd())
        print("to stderr", file=sys.stderr)
        for i in range(5):
            run.log("loss", 1.0 / (i + 1))
        run.log("Accuracy", 0.97)
        run.tag("where", "slurm")
        with open("outputs/model.txt", "w") as f:
            f.write("weights")
        with open("logs/extra.log", "w") as f:
            f.write("a log file\\n")
        """)})
    sub = submit(d, src, "train.py", cpus=1, memory_gb=0.25, time_limit=120)
    run = wait_end(d, sub["id"])
    assert run["status"] == "Completed", (run, d.log_tail())
    assert run["target"] == "hpc" and run["job_id"] > 0
    assert run["resources"] == {"cpus": 1, "memory_gb": 0.25, "time_limit": 120}
    for stage in ("Queued", "Preparing", "Scaling", "Running", "Finalizing", "Completed"):
        assert stage in run["transitions"], run["transitions"]
    assert run["exit_code"] == 0 and run["usage"] is not None
    lines = d.logs(run["id"])
    texts = [l["text"] for l in lines]
    assert any(t.startswith("job %d in " % run["job_id"]) for t in texts), texts
    assert {"stream": "stderr", "text": "to stderr"}.items() <= \
        next(l for l in lines if l["text"] == "to stderr").items()
    metrics = {m["name"]: m for m in d.rpc("run.metrics", {"run": run["id"]})["metrics"]}
    assert metrics["loss"]["count"] == 5 and metrics["Accuracy"]["last"] == 0.97
    assert run["tags"] == {"where": "slurm"}
    paths = [a["path"] for a in d.rpc("run.outputs", {"run": run["id"]})["artifacts"]]
    assert "outputs/model.txt" in paths and "logs/extra.log" in paths
    data = d.rpc("artifact.read", {"run": run["id"], "path": "outputs/model.txt"})
    assert data["size"] == 7
    assert wait_for(lambda: cluster.job_state(run["job_id"]) == "COMPLETED",
                    what="Slurm to report the job COMPLETED")
    # The run's directory (under the shared directory) is removed afterwards.
    wait_for(lambda: not (d.state_dir / "runs" / run["id"]).exists(),
             what="the run directory to be removed")
    res = d.cli("show", run["id"])
    assert "hpc (Slurm job %d)" % run["job_id"] in res.stdout


def test_fails_with_the_exit_code(hpc, make_tree):
    d = hpc
    src = make_tree({"fail.py": "import sys\nprint('about to fail')\nsys.exit(3)\n"})
    run = wait_end(d, submit(d, src, "fail.py")["id"])
    assert run["status"] == "Failed"
    assert run["error"]["code"] == "UserError" and run["error"]["stage"] == "Running"
    assert "code 3" in run["error"]["message"]
    assert run["exit_code"] == 3
    assert [l["text"] for l in d.logs(run["id"])] == ["about to fail"]
    res = d.cli("wait", run["id"], check=2)
    assert "Failed" in res.stdout


def test_slurm_refuses_the_job(hpc, cluster, make_tree):
    """A partition Slurm does not have: its refusal fails the run in Scaling."""
    d = hpc
    d.cli("compute", "create", "nopart", "--type", "slurm", "--rest", "unix:" + cluster.sock,
          "--partition", "nope")
    src = make_tree({"x.py": "print(1)\n"})
    run = wait_end(d, submit(d, src, "x.py", target="nopart")["id"])
    assert run["status"] == "Failed", run
    assert run["error"]["code"] == "ExecutionFailed" and run["error"]["stage"] == "Scaling"
    assert "Slurm refused the job" in run["error"]["message"], run["error"]
    assert "Invalid partition name" in run["error"]["message"], run["error"]
    assert "Running" not in run["transitions"]


def test_slurm_warning_is_shown(hpc, cluster, make_tree):
    """More CPUs than the node has: Slurm takes the job but it cannot start; the
    run waits in Scaling with Slurm's words among its warnings, and can be canceled."""
    d = hpc
    src = make_tree({"x.py": "print(1)\n"})
    sub = submit(d, src, "x.py", cpus=4096)
    run = wait_for(lambda: (lambda r: r if r["warnings"] else None)(d.show(sub["id"])),
                   timeout=DEADLINE, what="a warning on the run")
    assert run["status"] == "Scaling"
    assert "Slurm accepted job %d with a warning" % run["job_id"] in run["warnings"][0]["message"]
    d.cli("cancel", sub["id"])
    assert wait_end(d, sub["id"])["status"] == "Canceled"


SLEEPER = WAIT_FILE + script("""
    import sys, time
    print("started", flush=True)
    wait_file(sys.argv[1])
    print("done")
    """)


def test_cancel_running(hpc, cluster, make_tree, ext):
    d = hpc
    src = make_tree({"sleeper.py": SLEEPER})
    sub = submit(d, src, "sleeper.py", str(ext / "never"))
    d.wait_status(sub["id"], "Running", timeout=DEADLINE)
    d.wait_text(sub["id"], "started", timeout=DEADLINE)
    job = d.show(sub["id"])["job_id"]
    assert cluster.jobs().get(str(job)) == "RUNNING"
    d.cli("cancel", sub["id"])
    run = wait_end(d, sub["id"])
    assert run["status"] == "Canceled", run
    assert "CancelRequested" in run["transitions"] and "Finalizing" in run["transitions"]
    assert [l["text"] for l in d.logs(run["id"])] == ["started"]
    wait_for(lambda: cluster.job_state(job) in ("CANCELLED", "COMPLETED"),
             what="the Slurm job to end")


def test_cancel_pending(hpc, cluster, make_tree, ext):
    """A run whose job waits for CPUs (another run holds them all) is canceled in Scaling."""
    d = hpc
    src = make_tree({"sleeper.py": SLEEPER})
    cpus = os.cpu_count()
    blocker = submit(d, src, "sleeper.py", str(ext / "go"), cpus=cpus)
    d.wait_status(blocker["id"], "Running", timeout=DEADLINE)
    waiting = submit(d, src, "sleeper.py", str(ext / "go"), cpus=1)
    wait_for(lambda: d.show(waiting["id"]).get("job_id"), timeout=DEADLINE,
             what="the second run's job to be submitted")
    job = d.show(waiting["id"])["job_id"]
    assert cluster.jobs().get(str(job)) == "PENDING"
    time.sleep(1)
    assert d.status(waiting["id"]) == "Scaling"
    d.cli("cancel", waiting["id"])
    run = wait_end(d, waiting["id"])
    assert run["status"] == "Canceled", run
    assert "Running" not in run["transitions"] and "CancelRequested" in run["transitions"]
    assert run["error"] is None
    wait_for(lambda: cluster.job_state(job) == "CANCELLED", what="Slurm to cancel the job")
    # The blocker was not disturbed, and finishes.
    (ext / "go").write_text("")
    assert wait_end(d, blocker["id"])["status"] == "Completed"


def test_canceled_outside_runyard(hpc, cluster, make_tree, ext):
    """scancel of the job: the supervisor records a cancel nobody asked runyard for;
    Slurm's CANCELLED says what happened."""
    d = hpc
    src = make_tree({"sleeper.py": SLEEPER})
    sub = submit(d, src, "sleeper.py", str(ext / "never"))
    d.wait_text(sub["id"], "started", timeout=DEADLINE)
    cluster.run("scancel", str(d.show(sub["id"])["job_id"]))
    run = wait_end(d, sub["id"])
    assert run["status"] == "Canceled", run
    assert "was canceled outside runyard" in d.log_text()


def test_time_limit(hpc, cluster, make_tree, ext):
    d = hpc
    src = make_tree({"sleeper.py": SLEEPER})
    sub = submit(d, src, "sleeper.py", str(ext / "never"), time_limit=2)
    run = wait_end(d, sub["id"])
    assert run["status"] == "Failed", run
    assert run["error"]["code"] == "Timeout" and run["error"]["stage"] == "Running"
    assert "2 seconds" in run["error"]["message"]
    assert run["duration"] < 30
    assert [l["text"] for l in d.logs(run["id"])] == ["started"]
    # Slurm was asked for whole minutes that cover the limit and the grace.
    out = cluster.run("scontrol", "-o", "show", "job", str(run["job_id"])).stdout
    assert "TimeLimit=00:01:00" in out, out


def test_daemon_restart_while_a_job_runs(hpc, cluster, make_tree, ext):
    d = hpc
    src = make_tree({"train.py": WAIT_FILE + script("""
        import sys
        from azureml.core.run import Run
        run = Run.get_context()
        print("before", flush=True)
        run.log("step", 1)
        run.flush()
        wait_file(sys.argv[1])
        print("after")
        run.log("step", 2)
        """)})
    sub = submit(d, src, "train.py", str(ext / "go"))
    d.wait_text(sub["id"], "before", timeout=DEADLINE)
    job = d.show(sub["id"])["job_id"]
    d.kill9()
    assert cluster.jobs().get(str(job)) == "RUNNING"
    d.start()
    assert d.status(sub["id"]) == "Running"
    (ext / "go").write_text("")
    run = wait_end(d, sub["id"])
    assert run["status"] == "Completed", (run, d.log_tail())
    assert run["job_id"] == job
    assert [l["text"] for l in d.logs(run["id"])] == ["before", "after"]
    points = d.rpc("run.metrics", {"run": run["id"], "name": "step"})["points"]
    assert [p["value"] for p in points] == [1, 2]
    assert "watching its job on compute target hpc again" in d.log_text()


def test_daemon_restart_while_a_job_waits(hpc, cluster, make_tree, ext):
    """A job still PENDING when the daemon comes back is found by its id, not
    submitted again, and runs once it gets its CPUs."""
    d = hpc
    src = make_tree({"sleeper.py": SLEEPER})
    blocker = submit(d, src, "sleeper.py", str(ext / "go"), cpus=os.cpu_count())
    d.wait_status(blocker["id"], "Running", timeout=DEADLINE)
    waiting = submit(d, src, "sleeper.py", str(ext / "go2"), cpus=1)
    wait_for(lambda: d.show(waiting["id"]).get("job_id"), timeout=DEADLINE,
             what="the job to be submitted")
    job = d.show(waiting["id"])["job_id"]
    d.stop()
    d.start()
    assert d.status(waiting["id"]) == "Scaling"
    (ext / "go").write_text("")
    d.wait_status(waiting["id"], "Running", timeout=DEADLINE)
    (ext / "go2").write_text("")
    run = wait_end(d, waiting["id"])
    assert run["status"] == "Completed" and run["job_id"] == job
    # Submitted once: the only job carrying the run's id is the recorded one.
    assert cluster.jobs_named(waiting["id"]) == [str(job)]


def test_slurmrestd_down(hpc, cluster, make_tree, ext):
    """Runs keep their status while slurmrestd is away; nothing is lost, and work
    goes on when it is back."""
    d = hpc
    src = make_tree({"sleeper.py": SLEEPER})
    first = submit(d, src, "sleeper.py", str(ext / "go"))
    d.wait_text(first["id"], "started", timeout=DEADLINE)
    assert cluster.script("rest-stop", cluster.dir).returncode == 0
    try:
        second = submit(d, src, "sleeper.py", str(ext / "go"))
        # The running run finishes through its files, without the REST API.
        (ext / "go").write_text("")
        assert wait_end(d, first["id"])["status"] == "Completed"
        time.sleep(2)
        assert d.status(second["id"]) == "Scaling"
        assert d.show(second["id"]).get("job_id") is None
        wait_for(lambda: "slurmrestd" in d.log_text() and "failed" in d.log_text(),
                 what="the daemon to log the outage")
    finally:
        assert cluster.script("rest-start", cluster.dir).returncode == 0
    run = wait_end(d, second["id"])
    assert run["status"] == "Completed", (run, d.log_tail())
    assert "answers again" in d.log_text()


def test_target_with_runs_cannot_be_deleted(hpc, make_tree, ext):
    d = hpc
    src = make_tree({"sleeper.py": SLEEPER})
    sub = submit(d, src, "sleeper.py", str(ext / "go"))
    d.wait_text(sub["id"], "started", timeout=DEADLINE)
    res = d.cli("compute", "delete", "hpc", check=2)
    assert "has 1 run(s) that have not ended" in res.stderr
    (ext / "go").write_text("")
    wait_end(d, sub["id"])
    d.cli("compute", "delete", "hpc")
    assert [t["name"] for t in d.cli("compute", "list", json=True).json["targets"]] == ["local"]
    # The finished run still says where it ran.
    assert d.show(sub["id"])["target"] == "hpc"


def test_sweep_children_run_as_jobs(hpc, cluster, make_tree):
    """A sweep on the Slurm target: each child is a job of its own (issue #15)."""
    d = hpc
    src = make_tree({"once.py": script("""
        import argparse, runyard
        p = argparse.ArgumentParser()
        p.add_argument("--x", type=float)
        runyard.get_run().log("score", -(p.parse_args().x - 3) ** 2)
        """)})
    res = d.rpc("sweep.submit", {
        "source": str(src), "python": PY, "command": ["once.py"], "target": "hpc",
        "cpus": 1, "time_limit": 120, "metric": "score", "goal": "maximize",
        "sampling": "grid", "params": {"--x": "choice(2, 3)"}, "max_concurrent": 2})
    show = wait_for(lambda: (lambda s: s if s["status"] in TERMINAL else None)(
        d.rpc("sweep.show", {"sweep": res["id"]})), timeout=DEADLINE * 2,
        what="the sweep to end")
    assert show["status"] == "Completed", (show, d.log_tail())
    kids = d.rpc("run.list", {"parent": res["id"]})["runs"]
    assert len(kids) == 2
    for k in kids:
        run = d.show(k["id"])
        assert run["status"] == "Completed" and run["target"] == "hpc" and run["job_id"] > 0
    assert show["best"]["value"] == 0 and show["best"]["params"] == {"--x": 3}
