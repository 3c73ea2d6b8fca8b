"""The Azure ML v1 SDK surface that real notebooks use (issue #19), run cell
by cell as notebooks of our own against a private runyardd (nbcells.py).
Each notebook follows what the public v1 sample notebooks write."""

import json
import os
import shutil

import pytest

from conftest import PY, REPO
from nbcells import run_cells

EXAMPLE = REPO / "examples" / "notebook"


@pytest.fixture
def nbd(daemon_factory):
    """A private daemon with Debian's python first on PATH."""
    return daemon_factory(env={"PATH": "/usr/bin:/bin:" + os.environ.get("PATH", "")})


@pytest.fixture
def nbdir(tmp_path):
    d = tmp_path / "nb"
    d.mkdir()
    shutil.copy(EXAMPLE / "train_iris.py", d / "train_iris.py")
    return d


# -- 1. package basics, exceptions, compute targets -------------------------------------

BASICS = [
    # the first cell of most samples
    """\
import azureml.core
from azureml.core import Workspace
print("SDK version:", azureml.core.VERSION)
""",
    """\
from azureml.telemetry import set_diagnostics_collection
set_diagnostics_collection(send_diagnostics=True)
set_diagnostics_collection(send_diagnostics=True)
""",
    """\
ws = Workspace.from_config()
print(ws.name, ws.resource_group, ws.location, sep='\\n')
""",
    # the compute cell of the samples, as written
    """\
from azureml.core.compute import ComputeTarget, AmlCompute
from azureml.core.compute_target import ComputeTargetException

cpu_cluster_name = "cpu-cluster"
try:
    cpu_cluster = ComputeTarget(workspace=ws, name=cpu_cluster_name)
    print('Found existing cluster, use it.')
except ComputeTargetException:
    compute_config = AmlCompute.provisioning_configuration(vm_size='STANDARD_D2_V2',
                                                           max_nodes=4)
    cpu_cluster = ComputeTarget.create(ws, cpu_cluster_name, compute_config)
    print('Creating a new cluster.')

cpu_cluster.wait_for_completion(show_output=True)
""",
    """\
import json
status = cpu_cluster.get_status().serialize()
print(json.dumps(status['scaleSettings'], sort_keys=True))
print('state', cpu_cluster.get_status(), status['provisioningState'])
""",
    """\
compute_targets = ws.compute_targets
for name, ct in compute_targets.items():
    print('target', name, ct.type, ct.provisioning_state)
""",
    # a run on the created target goes to the local machine
    """\
from azureml.core import Environment, Experiment, ScriptRunConfig
env = Environment.get(ws, 'AzureML-Tutorial')
src = ScriptRunConfig(source_directory='.', script='train_iris.py',
                      arguments=['--kernel', 'linear', '--penalty', 1.0],
                      compute_target=cpu_cluster, environment=env)
run = Experiment(ws, 'compute-nb').submit(src)
run.wait_for_completion(show_output=False)
print('run', run.get_status(), run.get_details()['target'])
src2 = ScriptRunConfig(source_directory='.', script='train_iris.py',
                       compute_target='cpu-cluster', environment=env)
run2 = Experiment(ws, 'compute-nb').submit(src2)
print('run2', run2.wait_for_completion()['status'])
""",
    """\
from azureml.exceptions import (ComputeTargetException, UserErrorException,
    ActivityFailedException, WebserviceException, ServiceException, AzureMLException)
from azureml.core import Model
try:
    Model(ws, 'no-such-model')
except WebserviceException as e:
    print('model', type(e).__name__, 'ModelNotFound' in str(e))
try:
    Environment.get(ws, 'no-such-env')
except UserErrorException as e:
    print('env', type(e).__name__)
try:
    ComputeTarget(ws, 'gpu-cluster')
except ComputeTargetException as e:
    print('compute', type(e).__name__, 'cpu-cluster' in str(e))
try:
    ws._call('run.show', {'run': 'nope_1_00000000'})
except ServiceException as e:
    print('service', type(e).__name__, e.code)
print('bases', all(issubclass(c, AzureMLException) for c in (ComputeTargetException,
      UserErrorException, ActivityFailedException, WebserviceException, ServiceException)))
""",
    """\
from azureml.core.compute import ComputeInstance
try:
    ComputeInstance.provisioning_configuration(vm_size='STANDARD_DS3_V2')
except NotImplementedError as e:
    print('ci', e)
""",
    """\
cpu_cluster.delete()
try:
    ComputeTarget(ws, 'cpu-cluster')
except ComputeTargetException:
    print('deleted')
try:
    ws.compute_targets['local'].delete()
except ComputeTargetException as e:
    print('local stays')
""",
]


def test_basics_and_compute_notebook(nbd, nbdir):
    res = run_cells(nbd, nbdir, BASICS + ["print('again', ComputeTarget(ws, 'local').type)"])
    out = [r["stdout"] for r in res]
    assert out[0].startswith("SDK version: ") and "runyard" in out[0]
    # accepted, and said once
    assert res[1]["stderr"].count("set_diagnostics_collection") == 1
    assert "runyard" in out[2]
    assert "Creating a new cluster." in out[3] and "Succeeded" in out[3]
    assert '"maxNodeCount": 4' in out[4] and '"minNodeCount": 0' in out[4]
    assert "state Succeeded Succeeded" in out[4]
    assert "target cpu-cluster AmlCompute Succeeded" in out[5]
    assert "target local local Succeeded" in out[5]
    assert "run Completed local" in out[6] and "run2 Completed" in out[6]
    assert "model WebserviceException True" in out[7]
    assert "env UserErrorException" in out[7]
    assert "compute ComputeTargetException True" in out[7]
    assert "service DaemonError NotFound" in out[7]
    assert "bases True" in out[7]
    assert "ComputeInstance is not supported" in out[8]
    assert "deleted" in out[9] and "local stays" in out[9]

    # A second session of the same notebook finds the target it made.
    run_cells(nbd, nbdir, BASICS[:4])
    res = run_cells(nbd, nbdir, BASICS[:4])
    assert "Found existing cluster, use it." in res[3]["stdout"]


def test_compute_target_bad_input(nbd, nbdir):
    res = run_cells(nbd, nbdir, [
        "from azureml.core import Workspace\nfrom azureml.core.compute import AmlCompute, "
        "ComputeTarget\nws = Workspace.from_config()",
        "AmlCompute.provisioning_configuration(max_nodes=0)",
        "AmlCompute.provisioning_configuration(min_nodes=5, max_nodes=2)",
        "ComputeTarget.create(ws, '', AmlCompute.provisioning_configuration())",
        "print(sorted(ws.compute_targets))",
    ], keep_going=True, expect_ok=False)
    assert [r["ok"] for r in res] == [True, False, False, False, True]
    for r in res[1:4]:
        assert r["error"]["type"] == "ComputeTargetException", r
    assert "max_nodes" in res[1]["error"]["text"]
    assert res[4]["stdout"].strip() == "['local']"
