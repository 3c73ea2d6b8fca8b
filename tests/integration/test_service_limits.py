"""Scoring services held to their resources (docs/models.md, "Resources").

A deployment's cpu and memory_gb (model deploy --cpu/--memory-gb, the SDK's
AciWebservice.deploy_configuration) or else its model's ResourceConfiguration
hold every instance of the service, through the same tier as runs (cgroup2,
cgroup1 or poll; the daemon's log says which): a server that goes over its
memory is killed and the service says OutOfMemory; one that stays under
serves, its process is in its own cgroup (or pinned to its CPUs) while it
lives, and that is removed when it ends.
"""

import os
import re
import subprocess

import pytest

from conftest import DEADLINE, PY, pid_alive, script, wait_for
from test_models import SDK, deploy, post, register_file, service, wait_healthy

MIB = 1024 * 1024

# An entry script that allocates what it is told: at init() (the MiB in
# the file init_mib beside it, when there is one) or on a request
# {"hog": MiB}.
HOG_SCORE = script("""
    import json, os, time

    held = []

    def init():
        mib = int(open("init_mib").read()) if os.path.exists("init_mib") else 0
        for _ in range(mib // 10):
            held.append(b"\\x01" * (10 << 20))
            time.sleep(0.01)
        print("init holds %d MiB" % mib, flush=True)

    def run(raw_data):
        data = json.loads(raw_data)
        for _ in range(int(data.get("hog", 0)) // 10):
            held.append(b"\\x01" * (10 << 20))
            time.sleep(0.01)
        return {"held": len(held) * 10}
""")


@pytest.fixture
def model(tmp_path):
    f = tmp_path / "model.bin"
    f.write_bytes(b"weights\n")
    return f


@pytest.fixture(params=["machine", "poll"])
def tiered(request, daemon_factory, tmp_path):
    """A daemon in the tier this machine gives, and one made to poll (its
    cgroup root an empty directory), as a machine without cgroups is."""
    if request.param == "machine":
        return daemon_factory()
    empty = tmp_path / "no-cgroups"
    empty.mkdir()
    d = daemon_factory(env={"RUNYARD_CGROUP_ROOT": str(empty)})
    assert daemon_tier(d) == "poll"
    return d


def daemon_tier(daemon):
    m = re.search(r"resource limits: (cgroup2|cgroup1|poll)\b", daemon.log_text())
    assert m, "the daemon did not log its enforcement tier\n%s" % daemon.log_tail()
    return m.group(1)


def deploy_hog(daemon, make_tree, name, *extra, check=True):
    src = make_tree({"score.py": HOG_SCORE}, name="hog-" + name)
    return deploy(daemon, "hog", name, "--entry-script", "score.py", "--source", src, *extra,
                  check=check)


def cgroup_of(pid, controller):
    """The path of pid's cgroup in the v1 hierarchy of controller."""
    with open("/proc/%d/cgroup" % pid) as f:
        for line in f:
            _, ctl, path = line.rstrip("\n").split(":", 2)
            if controller in ctl.split(","):
                return path
    return None


def held_proof(pid, tier):
    """What holds pid: its memory cgroup's directory, or its CPU list."""
    if tier == "cgroup1":
        path = cgroup_of(pid, "memory")
        return "/sys/fs/cgroup/memory" + path
    if tier == "cgroup2":
        return "/sys/fs/cgroup" + cgroup_of(pid, "")
    with open("/proc/%d/status" % pid) as f:
        return [l.split(":", 1)[1].strip() for l in f if l.startswith("Cpus_allowed_list")][0]


def test_a_server_within_its_limits_serves_held_by_the_tier(tiered, make_tree, model):
    daemon = tiered
    register_file(daemon, "hog", model, "--cpu", "1", "--memory-gb", "0.5")
    s = deploy_hog(daemon, make_tree, "ok")
    assert s["resources"] == {"cpu": 1, "memory_gb": 0.5}, s
    s = wait_healthy(daemon, "ok")
    tier = daemon_tier(daemon)
    assert [i["tier"] for i in s["instances"]] == [tier], s["instances"]
    assert post(s["port"], "/score", {"hog": 20}) == (200, {"held": 20})
    pid = s["pid"]
    proof = held_proof(pid, tier)
    if tier == "cgroup1":
        assert re.search(r"/runyard/svc-[0-9a-f]{8}-%d$" % pid, proof), proof
        with open(proof + "/memory.limit_in_bytes") as f:
            assert int(f.read()) == 512 * MIB
        cpu = cgroup_of(pid, "cpu")
        if cpu and "/runyard/svc-" in cpu:
            hier = [d for d in os.listdir("/sys/fs/cgroup") if "cpu" in d.split(",")][0]
            with open("/sys/fs/cgroup/%s%s/cpu.cfs_quota_us" % (hier, cpu)) as f:
                assert int(f.read()) == 100000
    elif tier == "poll" and os.cpu_count() > 1:
        assert re.fullmatch(r"\d+", proof), proof  # one CPU of the machine's
    out = daemon.cli("service", "show", "ok").stdout
    assert "cpu 1, memory 0.5 GB" in out and "held by " + tier in out, out
    assert "is held to 512.0 MiB of memory and 1 CPUs (%s)" % tier in \
        daemon.cli("service", "logs", "ok").stdout
    daemon.cli("service", "delete", "ok")
    wait_for(lambda: not pid_alive(pid), what="the server to end")
    if tier != "poll":
        wait_for(lambda: not os.path.exists(proof), what="its cgroup to be removed")


def test_a_server_over_its_memory_at_init_fails_out_of_memory(tiered, make_tree, model):
    daemon = tiered
    register_file(daemon, "hog", model, "--memory-gb", "0.125")
    src = make_tree({"score.py": HOG_SCORE, "init_mib": "400"}, name="fat")
    res = deploy(daemon, "hog", "fat", "--entry-script", "score.py", "--source", src,
                 check=False)
    assert res.rc != 0, "400 MiB were held in 128 MiB: %s" % res.stdout
    assert "OutOfMemory" in res.stderr, res.stderr
    s = service(daemon, "fat")
    assert s["state"] == "Failed", s
    assert "OutOfMemory" in s["error"] and "128.0 MiB" in s["error"], s["error"]
    if daemon_tier(daemon) != "poll":
        # The kernel stops it in init; the poll tier looks once a second, and at the
        # first health check, so init may have finished by then (never serving).
        assert "init holds 400 MiB" not in daemon.cli("service", "logs", "fat").stdout


def test_a_request_over_its_memory_kills_the_server_which_comes_back(tiered, make_tree, model):
    daemon = tiered
    register_file(daemon, "hog", model, "--memory-gb", "0.25")
    s = deploy_hog(daemon, make_tree, "spiky")
    port, pid = s["port"], s["pid"]
    assert post(port, "/score", {"hog": 10}) == (200, {"held": 10})
    try:
        status, _ = post(port, "/score", {"hog": 600}, timeout=30)
    except OSError:
        status = None  # the connection died with the server
    assert status != 200
    wait_for(lambda: not pid_alive(pid), what="the server over its limit to be killed")
    s2 = wait_healthy(daemon, "spiky", other_than_pid=pid)
    assert s2["restarts"] >= 1
    logs = daemon.cli("service", "logs", "spiky").stdout
    assert "OutOfMemory" in logs and "256.0 MiB" in logs, logs
    assert post(port, "/score", {"hog": 10}) == (200, {"held": 10})


def test_the_cgroup_of_a_server_that_ended_with_no_daemon_goes(daemon, make_tree, model):
    tier = daemon_tier(daemon)
    if tier == "poll":
        pytest.skip("this machine gives no cgroup: nothing to leave behind")
    register_file(daemon, "hog", model, "--memory-gb", "0.5")
    s = deploy_hog(daemon, make_tree, "orphan")
    pid = s["pid"]
    proof = held_proof(pid, tier)
    assert os.path.isdir(proof)
    daemon.kill9()
    os.kill(pid, 9)
    wait_for(lambda: not pid_alive(pid), what="the server to end")
    daemon.start()
    wait_for(lambda: not os.path.exists(proof), what="its cgroup to be removed")
    s2 = wait_healthy(daemon, "orphan", other_than_pid=pid)
    assert os.path.isdir(held_proof(s2["pid"], tier))


def test_the_deployment_overrides_the_model_and_survives_a_restart(daemon, make_tree, model):
    register_file(daemon, "hog", model, "--cpu", "1", "--memory-gb", "0.5")
    s = deploy_hog(daemon, make_tree, "over", "--memory-gb", "0.75")
    assert s["resources"] == {"cpu": 1, "memory_gb": 0.75}, s
    pid = wait_healthy(daemon, "over")["pid"]
    daemon.kill9()
    daemon.start()
    s2 = wait_healthy(daemon, "over", other_than_pid=pid)
    assert s2["resources"] == {"cpu": 1, "memory_gb": 0.75}, s2
    assert all(i["tier"] == daemon_tier(daemon) for i in s2["instances"]), s2["instances"]
    # The SDK's AciWebservice.deploy_configuration(cpu_cores, memory_gb).
    code = script("""
        import sys
        from azureml.core import Workspace
        from azureml.core.model import InferenceConfig, Model
        from azureml.core.webservice import AciWebservice
        ws = Workspace.from_config()
        svc = Model.deploy(ws, "aci", [Model(ws, "hog")],
                           InferenceConfig(entry_script="score.py", source_directory=sys.argv[1]),
                           AciWebservice.deploy_configuration(cpu_cores=0.5, memory_gb=0.3))
        svc.wait_for_deployment()
        print("state", svc.state)
    """)
    src = make_tree({"score.py": HOG_SCORE}, name="aci")
    env = dict(os.environ, RUNYARD_SOCKET=daemon.socket, PYTHONPATH=str(SDK))
    env.pop("RUNYARD_RUN_ID", None)
    res = subprocess.run([PY, "-c", code, str(src)], capture_output=True, text=True, env=env,
                         timeout=DEADLINE * 3)
    assert res.returncode == 0 and "state Healthy" in res.stdout, res.stderr + res.stdout
    assert service(daemon, "aci")["resources"] == {"cpu": 0.5, "memory_gb": 0.3}


def test_bad_resources_are_refused_and_change_nothing(daemon, make_tree, model):
    register_file(daemon, "hog", model)
    res = deploy_hog(daemon, make_tree, "big", "--memory-gb", "100000", check=False)
    assert res.rc != 0 and "this machine has" in res.stderr, res.stderr
    res = deploy_hog(daemon, make_tree, "many", "--cpu", "4096", check=False)
    assert res.rc != 0 and "this machine has" in res.stderr, res.stderr
    res = deploy_hog(daemon, make_tree, "zero", "--cpu", "0", check=False)
    assert res.rc != 0 and "--cpu wants a number above 0" in res.stderr, res.stderr
    for args in ({"cpu": -1}, {"memory_gb": "lots"}, {"cpu": True}):
        with pytest.raises(Exception) as e:
            daemon.rpc("model.deploy", dict({"model": "hog", "service": "bad"}, **args))
        assert "InvalidArgument" in str(e.value) or "invalid" in str(e.value).lower(), e.value
    assert daemon.cli("service", "list", json=True).json["services"] == []
