"""The Azure ML v1 SDK surface that real notebooks use (issue #19), run cell
by cell as notebooks of our own against a private runyardd (nbcells.py).
Each notebook follows what the public v1 sample notebooks write."""

import os
import shutil

import pytest

from conftest import PY, REPO
from ryclient import ProtocolError
from httpserver import http_server  # noqa: F401
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


# -- 2. interactive runs ------------------------------------------------------------------

INTERACTIVE = [
    """\
from azureml.core import Workspace, Experiment, Run
ws = Workspace.from_config()
exp = Experiment(workspace=ws, name='interactive-nb')
""",
    # start_logging with a snapshot and outputs, and the whole logging API
    """\
import os
os.makedirs('outputs', exist_ok=True)
os.makedirs('logs_dir/sub', exist_ok=True)
open('logs_dir/a.txt', 'w').write('a')
open('logs_dir/sub/b.txt', 'w').write('b')
open('pic.png', 'wb').write(b'\\x89PNG\\r\\n\\x1a\\nfake')
run = exp.start_logging(snapshot_directory='.', outputs='outputs')
print('status', run.get_status())
run.log('alpha', 0.5)
for i in range(5):
    run.log('loss', 1.0 / (i + 1))
run.log_list('accuracies', [0.6, 0.7, 0.8])
run.log_row('epochs', epoch=1, acc=0.5)
run.log_row('epochs', epoch=2, acc=0.75)
run.log_table('table', {'x': [1, 2], 'y': [3, 4]})
run.log_image('picture', path='pic.png')
run.upload_file('extra/notes.txt', 'logs_dir/a.txt')
run.upload_folder('folder', 'logs_dir')
run.tag('stage', 'baseline')
run.set_tags({'team': 'runyard', 'flag': None})
run.add_properties({'dataset': 'iris-v1'})
open('outputs/model.txt', 'w').write('model')
""",
    """\
m = run.get_metrics()
print('alpha', m['alpha'], 'loss', len(m['loss']), 'acc', m['accuracies'])
print('epochs', m['epochs'], 'table', m['table'], 'picture', m['picture'].startswith('images/'))
d = run.get_details()
print('tags', d['tags']['stage'], d['tags']['team'], repr(d['tags']['flag']))
print('props', d['properties']['dataset'], bool(d['properties']['ContentSnapshotId']))
""",
    # children
    """\
child = run.child_run(name='child-a')
child.log('child_metric', 1)
child.complete()
kids = run.create_children(tag_key='fold', tag_values=['1', '2'])
for k in kids:
    k.log('score', 0.9)
    k.complete()
print('children', len(run.get_children()), sorted(c.get_status() for c in run.get_children()))
""",
    """\
run.complete()
print('final', run.get_status())
names = run.get_file_names()
print('files', 'outputs/model.txt' in names, 'extra/notes.txt' in names,
      'folder/sub/b.txt' in names)
""",
    # Run(experiment, run_id) gets it back
    """\
again = Run(exp, run.id)
print('again', again.id == run.id, again.get_status(), again.get_metrics()['alpha'])
print('in get_runs', run.id in [r.id for r in exp.get_runs()],
      child.id in [r.id for r in exp.get_runs()],
      child.id in [r.id for r in exp.get_runs(include_children=True)])
""",
    # a context manager, completed or failed
    """\
with exp.start_logging() as r2:
    r2.log('x', 1)
print('with', r2.get_status())
try:
    with exp.start_logging() as r3:
        raise ValueError('boom in a cell')
except ValueError:
    pass
print('with-fail', r3.get_status(), r3.get_details()['error']['error']['message'])
r4 = exp.start_logging()
r4.fail(error_details='gave up', error_code='MyCode')
print('fail', r4.get_status(), r4.get_details()['error']['error']['code'])
r5 = exp.start_logging()
r5.cancel()
print('cancel', r5.get_status())
""",
]


def test_interactive_runs_notebook(nbd, nbdir):
    res = run_cells(nbd, nbdir, INTERACTIVE)
    out = [r["stdout"] for r in res]
    assert "status Running" in out[1]
    assert "alpha 0.5 loss 5 acc [0.6, 0.7, 0.8]" in out[2]
    assert "epochs {'epoch': [1, 2], 'acc': [0.5, 0.75]} table {'x': [1, 2], 'y': [3, 4]}" \
        " picture True" in out[2]
    assert "tags baseline runyard None" in out[2]
    assert "props iris-v1 True" in out[2]
    assert "children 3 ['Completed', 'Completed', 'Completed']" in out[3]
    assert "final Completed" in out[4] and "files True True True" in out[4]
    assert "again True Completed 0.5" in out[5]
    assert "in get_runs True False True" in out[5]
    assert "with Completed" in out[6]
    assert "with-fail Failed ValueError: boom in a cell" in out[6]
    assert "fail Failed MyCode" in out[6] and "cancel Canceled" in out[6]
    # in the history like submitted ones
    shown = nbd.rpc("run.show", {"run": _run_id(nbd, "interactive-nb")})
    assert shown["kind"] == "interactive" and shown["status"] == "Canceled"
    cli = nbd.cli("runs")
    assert "interactive-nb" in cli.stdout and " interactive " in cli.stdout
    assert "child of #" in cli.stdout
    assert "Heartbeat:" in nbd.cli("show", shown["id"]).stdout


def _run_id(daemon, experiment):
    runs = daemon.rpc("run.list", {"experiment": experiment})["runs"]
    return [r for r in runs if not r.get("parent")][0]["id"]


def test_dead_notebook_run_fails_heartbeat_lost(nbd, nbdir):
    """The notebook's process dies (SIGKILL) without completing its run: the
    daemon fails it HeartbeatLost and keeps what it logged."""
    res = run_cells(nbd, nbdir, [
        "from azureml.core import Workspace, Experiment\nws = Workspace.from_config()\n"
        "run = Experiment(ws, 'dies').start_logging()\nrun.log('before', 7)\nrun.flush()\n"
        "print(run.id, flush=True)\nopen('run_id', 'w').write(run.id)",
        "import os, signal\nos.kill(os.getpid(), signal.SIGKILL)",
        "print('never')",
    ], env={"RUNYARD_HEARTBEAT_TIMEOUT": "2"}, expect_ok=False)
    assert len(res) == 1 and res[0]["ok"]
    run_id = (nbdir / "run_id").read_text()
    assert nbd.status(run_id) == "Running"
    doc = nbd.wait_terminal(run_id, timeout=30)
    assert doc["status"] == "Failed", doc
    assert doc["error"]["code"] == "HeartbeatLost", doc
    assert "no heartbeat for 2 seconds" in doc["error"]["message"]
    pts = nbd.rpc("run.metrics", {"run": run_id, "name": "before"})["points"]
    assert [p["value"] for p in pts] == [7]


def _start(nbd, src, **kw):
    args = {"command": [PY], "source": str(src), "experiment": "raw", "interactive": True}
    args.update(kw)
    return nbd.rpc("run.submit", args)


def test_interactive_run_ops_and_restart(nbd, tmp_path):
    src = tmp_path / "src"
    src.mkdir()
    (src / "a.txt").write_text("a")
    a = _start(nbd, src, heartbeat_timeout=3)
    b = _start(nbd, src, heartbeat_timeout=3, parent=a["id"])
    assert a["status"] == "Running" and a["kind"] == "interactive" and len(a["token"]) == 32
    assert os.path.isfile(a["tracking_file"])
    with open(a["tracking_file"], "a") as f:
        f.write('{"op":"metric","name":"m","values":[1],"ts":1}\n')
    hb = nbd.rpc("run.heartbeat", {"token": a["token"]})
    assert hb["status"] == "Running" and hb["id"] == a["id"]
    assert nbd.show(b["id"])["parent"] == a["id"]
    # A restart keeps it Running, and it has a whole timeout from then.
    nbd.restart()
    assert nbd.status(a["id"]) == "Running"
    assert nbd.rpc("run.heartbeat", {"token": a["token"]})["status"] == "Running"
    assert nbd.rpc("run.metrics", {"run": a["id"], "name": "m"})["points"][0]["value"] == 1
    # b gets no heartbeat: it fails; a is kept alive and ends Completed.
    import time
    t0 = time.time()
    while nbd.status(b["id"]) == "Running" and time.time() - t0 < 20:
        nbd.rpc("run.heartbeat", {"token": a["token"]})
        time.sleep(0.3)
    assert nbd.show(b["id"])["error"]["code"] == "HeartbeatLost"
    fin = nbd.rpc("run.finish", {"token": a["token"], "status": "Completed"})
    assert fin["status"] == "Completed"
    # An ended run answers heartbeats with its status; finishing again is Conflict.
    assert nbd.rpc("run.heartbeat", {"token": a["token"]})["status"] == "Completed"
    with pytest.raises(ProtocolError) as e:
        nbd.rpc("run.finish", {"run": a["id"], "status": "Failed"})
    assert e.value.code == "Conflict"
    # A watcher of an interactive run gets its end.
    w = _start(nbd, src)
    with nbd.client() as cl:
        cl.call("run.watch", {"run": w["id"]})
        nbd.rpc("run.finish", {"token": w["token"], "status": "Failed",
                               "error_message": "stopped by hand"})
        ev = cl.next_event(timeout=20)
        while ev["event"] != "run.end":
            ev = cl.next_event(timeout=20)
        assert ev["data"]["run"]["status"] == "Failed"
        assert ev["data"]["run"]["error"]["code"] == "UserError"
        assert ev["data"]["run"]["error"]["message"] == "stopped by hand"
    assert nbd.cli("wait", w["id"], check=False).rc == 2
    # run.cancel of an interactive run ends it at once.
    c = _start(nbd, src)
    assert c["heartbeat_timeout"] == 120
    assert nbd.rpc("run.cancel", {"run": c["id"]})["status"] == "Canceled"
    assert nbd.rpc("run.heartbeat", {"token": c["token"]})["status"] == "Canceled"
    # The snapshot was taken as for a submitted run.
    assert nbd.show(a["id"])["snapshot"] == nbd.show(c["id"])["snapshot"]


def test_interactive_bad_input_changes_nothing(nbd, tmp_path):
    src = tmp_path / "src"
    src.mkdir()
    live = _start(nbd, src)
    sub = nbd.rpc("run.submit", {"command": ["sleep", "30"], "source": str(src),
                                 "experiment": "raw"})
    nbd.wait_status(sub["id"], "Running")
    before = len(nbd.rpc("run.list", {"limit": 1000})["runs"])
    bad = [
        ("run.submit", {"interactive": "yes"}, "InvalidArgument", "interactive"),
        ("run.submit", {"interactive": True, "heartbeat_timeout": 0}, "InvalidArgument",
         "heartbeat_timeout"),
        ("run.submit", {"heartbeat_timeout": 5}, "InvalidArgument", "interactive run only"),
        ("run.submit", {"interactive": True, "timeout": 5}, "InvalidArgument", "'timeout'"),
        ("run.submit", {"interactive": True, "inputs": [{"name": "x", "source": str(src)}]},
         "InvalidArgument", "'inputs'"),
        ("run.submit", {"interactive": True, "retries": 2}, "InvalidArgument", "retries"),
        ("run.submit", {"interactive": True, "parent": "nope_1_00000000"}, "NotFound", ""),
        ("run.submit", {"parent": 99999}, "NotFound", ""),
        ("run.heartbeat", {"token": "0" * 32}, "PermissionDenied", "token"),
        ("run.heartbeat", {"run": sub["id"]}, "Conflict", "not an interactive run"),
        ("run.heartbeat", {"token": live["token"], "run": sub["id"]}, "PermissionDenied", ""),
        ("run.finish", {"token": live["token"]}, "InvalidArgument", "status"),
        ("run.finish", {"token": live["token"], "status": "Running"}, "InvalidArgument",
         "Completed"),
        ("run.finish", {"token": live["token"], "status": "Completed", "error_code": "X"},
         "InvalidArgument", "Failed"),
        ("run.finish", {"token": live["token"], "status": "Failed", "error_code": ""},
         "InvalidArgument", "error_code"),
        ("run.finish", {"token": live["token"], "status": "Failed", "error_message": 5},
         "InvalidArgument", "error_message"),
        ("run.finish", {"run": sub["id"], "status": "Completed"}, "Conflict",
         "not an interactive run"),
        ("run.finish", {"run": "nope_1_00000000", "status": "Completed"}, "NotFound", ""),
    ]
    for op, args, code, text in bad:
        if op == "run.submit":
            args = dict({"command": [PY], "source": str(src), "experiment": "raw"}, **args)
        with pytest.raises(ProtocolError) as e:
            nbd.rpc(op, args)
        assert e.value.code == code, (op, args, e.value.code, e.value.message)
        assert text in e.value.message, (op, args, e.value.message)
    assert len(nbd.rpc("run.list", {"limit": 1000})["runs"]) == before
    assert nbd.status(live["id"]) == "Running" and nbd.status(sub["id"]) == "Running"
    # an ended parent
    nbd.rpc("run.finish", {"token": live["token"], "status": "Completed"})
    with pytest.raises(ProtocolError) as e:
        _start(nbd, src, parent=live["id"])
    assert e.value.code == "Conflict"
    nbd.rpc("run.cancel", {"run": sub["id"]})


# -- 3. environments --------------------------------------------------------------------

TRAIN_CHECK = """\
import sys, sklearn, runyard
from azureml.core import Run
run = Run.get_context()
run.log('sklearn', sklearn.__version__)
print('interpreter', sys.executable)
child = run.child_run(name='in-run-child')
child.log('inner', 3)
child.complete()
print('child', child.get_status())
"""

ENVIRONMENTS = [
    """\
from azureml.core import Workspace, Environment, Experiment, ScriptRunConfig
from azureml.core.conda_dependencies import CondaDependencies
from azureml.core.runconfig import RunConfiguration
import sys
ws = Workspace.from_config()
""",
    """\
cd = CondaDependencies.create(conda_packages=['scikit-learn'], pip_packages=['joblib'],
                              python_version='%d.%d' % sys.version_info[:2])
cd.add_conda_package('numpy')
cd.add_pip_package('azureml-dataset-runtime[fuse]')
cd.add_channel('conda-forge')
print(cd.serialize_to_string())
cd.save('saved_conda.yml')
back = CondaDependencies('saved_conda.yml')
print('roundtrip', back == cd, sorted(back.conda_packages), sorted(back.pip_packages))
""",
    """\
env = Environment('sklearn-cd')
env.python.conda_dependencies = cd
env.docker.enabled = True
env.docker.base_image = 'mcr.microsoft.com/azureml/openmpi3.1.2-ubuntu18.04'
env = env.register(ws)
print('registered', env.name, env.version)
got = Environment.get(ws, 'sklearn-cd', env.version)
print('definition', sorted(got._doc['definition']['requirements']))
print('listed', 'sklearn-cd' in Environment.list(ws))
""",
    """\
src = ScriptRunConfig(source_directory='.', script='check.py', environment=env)
run = Experiment(ws, 'env-nb').submit(src)
run.wait_for_completion(show_output=True)
used = run.get_environment()
print('used', used.name, used.version == env.version)
print('children', [c.get_metrics() for c in run.get_children()])
""",
    # the run configuration's own environment, changed in place (older samples)
    """\
rc = RunConfiguration()
rc.environment.python.conda_dependencies = CondaDependencies.create(
    conda_packages=['scikit-learn'], python_version='%d.%d' % sys.version_info[:2])
src = ScriptRunConfig(source_directory='.', script='check.py', run_config=rc)
run2 = Experiment(ws, 'env-nb').submit(src)
print('rc run', run2.wait_for_completion()['status'], run2.get_environment().name)
""",
    # user-managed: this interpreter as is
    """\
um = Environment('user-managed')
um.python.user_managed_dependencies = True
um.python.interpreter_path = sys.executable
src = ScriptRunConfig(source_directory='.', script='check.py', environment=um)
run3 = Experiment(ws, 'env-nb').submit(src)
run3.wait_for_completion(show_output=True)
print('um', run3.get_environment().python.user_managed_dependencies)
""",
    # a conda file's dependencies read, changed and honoured
    """\
env4 = Environment.from_conda_specification('from-file', 'saved_conda.yml')
env4.python.conda_dependencies.remove_pip_package('joblib')
env4.register(ws)
print('file', sorted(Environment.get(ws, 'from-file')._doc['definition']['requirements']))
""",
]


def test_environments_notebook(nbd, nbdir):
    (nbdir / "check.py").write_text(TRAIN_CHECK)
    res = run_cells(nbd, nbdir, ENVIRONMENTS, timeout=600)
    out = [r["stdout"] for r in res]
    assert "- scikit-learn" in out[1] and "- numpy" in out[1] and "  - joblib" in out[1]
    assert "  - azureml-defaults" in out[1] and "- conda-forge" in out[1]
    assert "roundtrip True" in out[1]
    assert "registered sklearn-cd 1" in out[2]
    # azureml-* requirements are the shim's: not installed
    assert "definition ['joblib', 'numpy', 'scikit-learn']" in out[2], out[2]
    assert "listed True" in out[2]
    # env.docker: one warning, not a failure
    assert res[2]["stderr"].count("env.docker") == 1 and "not used" in res[2]["stderr"]
    assert "interpreter " in out[3] and "interpreter %s\n" % PY not in out[3], out[3]
    assert "child Completed" in out[3]
    assert "used sklearn-cd True" in out[3]
    assert "children [{'inner': 3}]" in out[3]
    assert "rc run Completed runyard-runconfig" in out[4]
    assert "interpreter %s" % PY in out[5] and "um True" in out[5]
    assert "file ['numpy', 'scikit-learn']" in out[6]


# -- 4. datastores and datasets -----------------------------------------------------------

TRAIN_TABULAR = """\
import argparse, os
from azureml.core import Run
p = argparse.ArgumentParser()
p.add_argument('--input-data', type=str)
p.add_argument('--files', type=str)
a = p.parse_args()
run = Run.get_context()
ds = run.input_datasets['iris']
df = ds.to_pandas_dataframe()
print('in run', type(ds).__name__, df.shape, list(df.columns)[:2], a.input_data)
print('files', sorted(os.listdir(a.files)))
run.log('rows', len(df))
"""

DATA = [
    """\
from azureml.core import Workspace, Dataset, Datastore, Experiment, ScriptRunConfig, Environment
import os
ws = Workspace.from_config()
datastore = ws.get_default_datastore()
print('default', datastore.name, datastore.datastore_type)
""",
    """\
from sklearn.datasets import load_iris
iris = load_iris(as_frame=True).frame
os.makedirs('data/more', exist_ok=True)
iris.to_csv('data/iris.csv', index=False)
iris.head(10).to_csv('data/more/iris-head.csv', index=False)
datastore.upload_files(files=['./data/iris.csv'], target_path='iris-data/', overwrite=True,
                       show_progress=True)
datastore.upload(src_dir='data', target_path='tree', overwrite=True, show_progress=False)
datastore.upload_files(files=['./data/iris.csv'], target_path='iris-data/', overwrite=False,
                       show_progress=True)
""",
    """\
tab = Dataset.Tabular.from_delimited_files(path=(datastore, 'iris-data/iris.csv'))
print('take', tab.take(3).to_pandas_dataframe().shape)
df = tab.to_pandas_dataframe()
print('all', df.shape, list(df.columns)[:2])
both = Dataset.Tabular.from_delimited_files(path=[(datastore, 'tree/**/*.csv')])
print('glob', both.to_pandas_dataframe().shape)
""",
    """\
tab = tab.register(workspace=ws, name='iris tabular', description='iris as a table',
                   create_new_version=True)
got = Dataset.get_by_name(ws, name='iris tabular')
print('registered', type(got).__name__, got.name, got.version,
      got.to_pandas_dataframe().shape)
files = Dataset.File.from_files(path=(datastore, 'tree/')).register(ws, 'iris files')
print('file dataset', type(files).__name__, sorted(files.to_path()))
""",
    """\
src = ScriptRunConfig(source_directory='.', script='train_tab.py',
                      arguments=['--input-data', got.as_named_input('iris'),
                                 '--files', files.as_named_input('tree').as_mount()],
                      environment=Environment.get(ws, 'AzureML-Tutorial'))
run = Experiment(ws, 'data-nb').submit(src)
run.wait_for_completion(show_output=True)
print('rows', run.get_metrics()['rows'])
""",
    """\
store = Datastore.register_azure_blob_container(workspace=ws, datastore_name='mystore',
                                                container_name='mycontainer',
                                                account_name='myaccount',
                                                account_key='not-used')
again = Datastore.get(ws, 'mystore')
print('blob', again.local_path.endswith('myaccount/mycontainer'), sorted(ws.datastores))
print('datasets', sorted(ws.datasets))
""",
]


def test_data_notebook(nbd, nbdir):
    (nbdir / "train_tab.py").write_text(TRAIN_TABULAR)
    res = run_cells(nbd, nbdir, DATA, timeout=600)
    out = [r["stdout"] for r in res]
    assert "default workspaceblobstore AzureBlob" in out[0]
    assert "Uploading ./data/iris.csv" in out[1] and "Skipping upload" in out[1]
    store = nbdir / ".data" / "runyard" / "datastores" / "workspaceblobstore"
    assert (store / "iris-data" / "iris.csv").is_file()
    assert (store / "tree" / "more" / "iris-head.csv").is_file()
    assert "take (3, 5)" in out[2]
    assert "all (150, 5) ['sepal length (cm)', 'sepal width (cm)']" in out[2]
    assert "glob (160, 5)" in out[2]
    assert "registered TabularDataset iris tabular 1 (150, 5)" in out[3]
    assert "file dataset FileDataset ['/iris.csv', '/more/iris-head.csv']" in out[3]
    assert "in run TabularDataset (150, 5) ['sepal length (cm)', 'sepal width (cm)'] " \
        "inputs/iris" in out[4], out[4]
    assert "files ['iris.csv', 'more']" in out[4]
    assert "rows 150" in out[4]
    assert "blob True ['mystore', 'workspaceblobstore']" in out[5]
    assert "datasets ['iris files', 'iris tabular']" in out[5]


def test_dataset_names_with_spaces(nbd, tmp_path):
    f = tmp_path / "a.csv"
    f.write_text("x,y\n1,2\n")
    ok = nbd.rpc("dataset.register", {"name": "my data set", "sources": [str(f)]})
    assert ok["id"] == "my data set:1"
    assert nbd.rpc("dataset.show", {"dataset": "my data set:1"})["files"] == 1
    before = nbd.rpc("dataset.list")["datasets"]
    for bad in (" leading", "trailing ", "a\tb", ""):
        with pytest.raises(ProtocolError) as e:
            nbd.rpc("dataset.register", {"name": bad, "sources": [str(f)]})
        assert e.value.code == "InvalidArgument", bad
    with pytest.raises(ProtocolError) as e:
        nbd.rpc("dataset.show", {"dataset": "trailing :1"})
    assert e.value.code == "InvalidArgument"
    assert nbd.rpc("dataset.list")["datasets"] == before


# -- 5/6. runs and experiments ------------------------------------------------------------

TRAIN_FILES = """\
import os
from azureml.core import Run
run = Run.get_context()
os.makedirs('outputs/sub', exist_ok=True)
open('outputs/x.txt', 'w').write('x')
open('outputs/sub/y.txt', 'w').write('y')
run.log('acc', 0.9)
print('hello from the run')
"""

RUNS = [
    """\
from azureml.core import Workspace, Experiment, ScriptRunConfig, Run
from azureml.exceptions import UserErrorException
import os, zipfile
ws = Workspace.from_config()
exp = Experiment(ws, 'runs-nb')
src = ScriptRunConfig(source_directory='.', script='files.py')
a = exp.submit(src, tags={'kind': 'a', 'flag': None})
b = exp.submit(src, tags={'kind': 'b'})
for r in (a, b):
    r.wait_for_completion()
a.add_properties({'p': '1'})
i = exp.start_logging()
i.add_properties({'p': '2'})
kid = i.child_run()
kid.tag('kind', 'a')
kid.complete()
i.complete()
""",
    """\
ids = lambda runs: sorted(r.number for r in runs)
print('all', ids(exp.get_runs()) == sorted([a.number, b.number, i.number]))
print('tag a', ids(exp.get_runs(tags={'kind': 'a'})) == [a.number])
print('tag key', ids(exp.get_runs(tags='kind')) == sorted([a.number, b.number]))
print('tag a with kids', ids(exp.get_runs(tags={'kind': 'a'}, include_children=True))
      == sorted([a.number, kid.number]))
print('prop', ids(exp.get_runs(properties={'p': '1'})) == [a.number])
print('type', ids(exp.get_runs(type='azureml.scriptrun')) == sorted([a.number, b.number]),
      ids(exp.get_runs(type='interactive')) == [i.number])
print('experiments', 'runs-nb' in [e.name for e in Experiment.list(ws)])
print('flag', repr(a.get_tags()['flag']), repr(a.get_details()['tags']['flag']))
""",
    """\
names = a.get_file_names()
print('names', [n for n in names if n.startswith('outputs/')], 'user_logs/std_log.txt' in names)
a.download_file('outputs/x.txt', output_file_path='dl/x.txt')
got = a.download_files(prefix='outputs', output_directory='dl2')
print('downloaded', open('dl/x.txt').read(), sorted(os.path.relpath(p, 'dl2') for p in got))
logs = a.get_details_with_logs()['logFiles']
print('logs', 'hello from the run' in logs['user_logs/std_log.txt'])
zpath = a.restore_snapshot(path='.')
print('snapshot', 'files.py' in zipfile.ZipFile(zpath).namelist())
print('portal', a.get_portal_url())
ws._call('daemon.ui')
print('portal web', a.get_portal_url())
""",
    """\
back = Run(exp, i.id)
print('back', back.get_status())
j = exp.start_logging()
Run(exp, j.id).fail(error_details='stopped from another handle')
print('handle fail', Run(exp, j.id).get_status())
try:
    a.fail()
    print('completed run fail: no-op', a.get_status())
except UserErrorException as e:
    print('refused', e)
""",
]


def test_runs_notebook(nbd, nbdir):
    (nbdir / "files.py").write_text(TRAIN_FILES)
    res = run_cells(nbd, nbdir, RUNS)
    out = [r["stdout"] for r in res]
    for line in ("all True", "tag a True", "tag key True", "tag a with kids True", "prop True",
                 "type True True", "experiments True"):
        assert line in out[1], out[1]
    assert "flag None None" in out[1]
    assert "names ['outputs/sub/y.txt', 'outputs/x.txt'] True" in out[2]
    assert "downloaded x ['outputs/sub/y.txt', 'outputs/x.txt']" in out[2]
    assert "logs True" in out[2] and "snapshot True" in out[2]
    assert "portal runyard show " in out[2]
    assert "portal web http://127.0.0.1:" in out[2] and "#/run/" in out[2]
    assert "back Completed" in out[3] and "handle fail Failed" in out[3]
    assert "completed run fail: no-op Completed" in out[3]


# -- 7. RunDetails -------------------------------------------------------------------------

WIDGETS = [
    """\
from azureml.core import Workspace, Experiment, ScriptRunConfig
from azureml.widgets import RunDetails
ws = Workspace.from_config()
exp = Experiment(ws, 'widgets-nb')
run = exp.start_logging()
run.log('accuracy', 0.97)
run.log('loss', 0.1)
kid = run.child_run()
kid.log('score', 0.5)
kid.complete()
RunDetails(run).show()
""",
    """\
run.complete()
RunDetails(run).show()
html = RunDetails(run)._repr_html_()
print('html', html.startswith('<div') and '<th>Metric</th>' in html and 'accuracy' in html)
""",
    # a queued run never blocks it; a failed one shows its error
    """\
import time
slow = exp.submit(ScriptRunConfig(source_directory='.', command=['sleep', '30']))
t0 = time.time()
RunDetails(slow).show()
print('fast', time.time() - t0 < 5)
slow.cancel()
bad = exp.submit(ScriptRunConfig(source_directory='.', command=['false']))
bad.wait_for_completion(raise_on_error=False)
RunDetails(bad).show()
""",
    # never fails a notebook: a run that is gone is one line
    """\
ws._call('daemon.status')
class Gone:
    id = 'gone'
    def get_status(self):
        raise RuntimeError('the daemon went away')
print('returns', RunDetails(Gone()).show())
""",
]


def test_run_details_notebook(nbd, nbdir):
    res = run_cells(nbd, nbdir, WIDGETS)
    out = [r["stdout"] for r in res]
    lines = out[0].splitlines()
    assert lines[0].startswith("Run widgets-nb_") and lines[0].endswith(": Running")
    assert "Experiment: widgets-nb" in lines[1] and "Type: interactive" in lines[1]
    assert "Duration: 0:00:0" in lines[1]
    assert lines[2].split() == ["Metric", "Value"]
    assert any(l.split() == ["accuracy", "0.97"] for l in lines)
    assert "Children (1):" in out[0] and "score=0.5" in out[0] and "Completed" in out[0]
    assert ": Completed" in out[1].splitlines()[0] and "html True" in out[1]
    assert "fast True" in out[2]
    assert "Error: " in out[2] and "Failed" in out[2]
    assert "RunDetails: cannot show run gone: the daemon went away" in out[3]
    assert "returns None" in out[3]


# -- 8. what is not supported says so ------------------------------------------------------

UNSUPPORTED = [
    ("from azureml.pipeline.core import Pipeline\nPipeline(ws, steps=[])", "Pipeline"),
    ("from azureml.pipeline.steps import PythonScriptStep\nPythonScriptStep(script_name='x.py')",
     "PythonScriptStep"),
    ("from azureml.train.estimator import Estimator\nEstimator(source_directory='.')",
     "Estimator"),
    ("from azureml.train.sklearn import SKLearn\nSKLearn('.')", "SKLearn"),
    ("Environment.from_docker_image('e', 'ubuntu')", "from_docker_image"),
    ("Environment('e').build(ws)", "Environment.build"),
    ("from azureml.core.compute import AksCompute\nAksCompute.provisioning_configuration()",
     "AksCompute"),
    ("from azureml.core.webservice import AksWebservice\nAksWebservice.deploy_configuration()",
     "AksWebservice"),
    ("ws.get_default_keyvault()", "get_default_keyvault"),
    ("Dataset.Tabular.from_parquet_files('x.parquet')", "from_parquet_files"),
    ("Dataset.Tabular.from_delimited_files('t.csv').random_split(0.8)", "random_split"),
]


def test_unsupported_raise_not_implemented(nbd, nbdir):
    (nbdir / "t.csv").write_text("a,b\n1,2\n")
    head = ("from azureml.core import Workspace, Environment, Dataset\n"
            "from azureml.core.authentication import InteractiveLoginAuthentication\n"
            "auth = InteractiveLoginAuthentication(tenant_id='x')\n"
            "ws = Workspace.create(name='mine', subscription_id='s', resource_group='r',"
            " auth=auth, exist_ok=True)\nws.write_config()\n"
            "ws2 = Workspace.from_config()\nprint('config', ws2.name, ws2.resource_group)")
    res = run_cells(nbd, nbdir, [head] + [c for c, _ in UNSUPPORTED], keep_going=True,
                    expect_ok=False)
    assert res[0]["ok"], res[0]
    assert "config mine r" in res[0]["stdout"]
    assert len(res) == len(UNSUPPORTED) + 1
    for r, (code, name) in zip(res[1:], UNSUPPORTED):
        assert not r["ok"] and r["error"]["type"] == "NotImplementedError", (code, r)
        assert name in r["error"]["text"] and "runyard" in r["error"]["text"], (code, r)


# -- a notebook written as the public v1 samples are (train on local, logging API) -------

SAMPLE_TRAIN = """\
import argparse
from azureml.core import Run
from sklearn.datasets import load_diabetes
from sklearn.linear_model import Ridge
from sklearn.metrics import mean_squared_error
from sklearn.model_selection import train_test_split
import joblib, os
run = Run.get_context()
X, y = load_diabetes(return_X_y=True)
X_train, X_test, y_train, y_test = train_test_split(X, y, test_size=0.2, random_state=0)
alphas = [0.0, 0.5, 1.0]
for alpha in alphas:
    reg = Ridge(alpha=alpha).fit(X_train, y_train)
    mse = mean_squared_error(y_test, reg.predict(X_test))
    run.log('alpha', alpha)
    run.log('mse', mse)
    os.makedirs('outputs', exist_ok=True)
    joblib.dump(reg, 'outputs/ridge_%s.pkl' % alpha)
print('Alpha is {0:.2f}, and MSE is {1:0.2f}'.format(alpha, mse))
"""

SAMPLE = [
    """\
import azureml.core
from azureml.core import Workspace
print("SDK version:", azureml.core.VERSION)
""",
    """\
from azureml.telemetry import set_diagnostics_collection
set_diagnostics_collection(send_diagnostics=True)
""",
    """\
ws = Workspace.from_config()
print('Workspace name: ' + ws.name,
      'Azure region: ' + ws.location,
      'Subscription id: ' + ws.subscription_id,
      'Resource group: ' + ws.resource_group, sep='\\n')
""",
    """\
from azureml.core import Experiment
experiment_name = 'train-on-local'
exp = Experiment(workspace=ws, name=experiment_name)
""",
    """\
from azureml.core import Environment
user_managed_env = Environment("user-managed-env")
user_managed_env.python.user_managed_dependencies = True
""",
    """\
from azureml.core import ScriptRunConfig
src = ScriptRunConfig(source_directory='./', script='train.py', compute_target='local',
                      environment=user_managed_env)
run = exp.submit(src)
""",
    """\
from azureml.widgets import RunDetails
RunDetails(run).show()
""",
    """\
run.wait_for_completion(show_output=True)
""",
    """\
run.get_metrics()
""",
    """\
print(run.get_file_names())
""",
    """\
from azureml.core.conda_dependencies import CondaDependencies
system_managed_env = Environment("system-managed-env")
system_managed_env.python.user_managed_dependencies = False
conda_dep = CondaDependencies()
conda_dep.add_conda_package('scikit-learn')
conda_dep.add_pip_package('joblib')
system_managed_env.python.conda_dependencies = conda_dep
src.run_config.environment = system_managed_env
run = exp.submit(src)
run.wait_for_completion(show_output=True)
""",
    """\
docker_env = Environment("docker-env")
docker_env.python.user_managed_dependencies = False
docker_env.docker.enabled = True
docker_env.python.conda_dependencies = conda_dep
src.run_config.environment = docker_env
run = exp.submit(src)
run.wait_for_completion(show_output=True)
""",
    """\
query_history = exp.get_runs()
for r in query_history:
    print(r.id, r.get_status())
""",
    # the logging API sample
    """\
logging_run = Experiment(workspace=ws, name='logging-api-test').start_logging()
logging_run.log(name='scalar', value=0.5)
for i in range(10):
    logging_run.log(name='sine', value=i * 0.1)
logging_run.log_list(name='list', value=[1, 2, 3])
logging_run.log_row(name='row', x=1, y=2)
logging_run.log_table(name='table', value={'x': [1, 2], 'y': [0.1, 0.2]})
with open('myfile.txt', 'w') as f:
    f.write('Hi!')
logging_run.upload_file(name='outputs/myfile.txt', path_or_stream='myfile.txt')
logging_run.complete()
RunDetails(logging_run).show()
print(logging_run.get_portal_url())
""",
]


def test_sample_style_notebook(nbd, nbdir):
    (nbdir / "train.py").write_text(SAMPLE_TRAIN)
    res = run_cells(nbd, nbdir, SAMPLE, timeout=900)
    out = [r["stdout"] for r in res]
    assert "SDK version: 1.0.0+runyard.shim" in out[0]
    assert "Workspace name: runyard" in out[2]
    assert "Execution Summary" in out[7] and "Alpha is 1.00" in out[7]
    assert "outputs/ridge_0.5.pkl" in out[9]
    for i in (10, 11):
        assert "Alpha is 1.00" in out[i], out[i]
    assert "env.docker (enabled) is not used" in res[11]["stderr"]
    assert len([l for l in out[12].splitlines() if "Completed" in l]) == 3
    assert "scalar" in out[13] and "runyard show" in out[13]


def test_tabular_from_url(nbd, nbdir, http_server):
    www = nbdir.parent / "www"
    www.mkdir(exist_ok=True)
    (www / "titanic.csv").write_text("name,age\na,1\nb,2\nc,3\n")
    url = http_server.url("/files/titanic.csv")
    (nbdir / "train_url.py").write_text(
        "from azureml.core import Run\n"
        "df = Run.get_context().input_datasets['titanic'].to_pandas_dataframe()\n"
        "print('in run', df.shape)\n")
    res = run_cells(nbd, nbdir, [
        "from azureml.core import Workspace, Dataset, Experiment, ScriptRunConfig\n"
        "ws = Workspace.from_config()\nweb_path = %r" % url,
        "ds = Dataset.Tabular.from_delimited_files(path=web_path)\n"
        "print('web', ds.take(2).to_pandas_dataframe().shape)",
        "ds = ds.register(ws, 'titanic ds')\n"
        "print('reg', Dataset.get_by_name(ws, 'titanic ds').to_pandas_dataframe().shape)",
        "run = Experiment(ws, 'url-nb').submit(ScriptRunConfig(source_directory='.',"
        " script='train_url.py', arguments=[ds.as_named_input('titanic')]))\n"
        "run.wait_for_completion(show_output=True)",
    ])
    out = [r["stdout"] for r in res]
    assert "web (2, 2)" in out[1]
    assert "reg (3, 2)" in out[2]
    assert "in run (3, 2)" in out[3]


def test_compute_create_finds_a_slurm_target(nbd, nbdir):
    """ComputeTarget.create of a name the daemon has as a Slurm target is
    that target (runs go to the cluster)."""
    import tempfile
    from fakeslurm import FakeSlurm
    sockdir = tempfile.mkdtemp(prefix="ry-fake-", dir="/tmp")
    fake = FakeSlurm(sockdir + "/rest.sock").start()
    try:
        nbd.rpc("compute.create", {"name": "cpu-cluster", "type": "slurm",
                                   "rest": "unix:" + fake.path})
        res = run_cells(nbd, nbdir, [BASICS[0], BASICS[2], BASICS[3],
                                     "print('type', cpu_cluster.type, cpu_cluster.name)\n"
                                     "print('status', cpu_cluster.get_status())"])
        assert "Found existing cluster, use it." in res[2]["stdout"]
        assert "type slurm cpu-cluster" in res[3]["stdout"]
        assert "status Succeeded" in res[3]["stdout"]
        res = run_cells(nbd, nbdir, [
            BASICS[0] + BASICS[2] + "from azureml.core.compute import ComputeTarget, AmlCompute\n"
            "t = ComputeTarget.create(ws, 'cpu-cluster', "
            "AmlCompute.provisioning_configuration(max_nodes=2))\nprint('created', t.type)"])
        assert "created slurm" in res[0]["stdout"]
        nbd.rpc("compute.delete", {"name": "cpu-cluster"})
    finally:
        fake.stop()
        shutil.rmtree(sockdir, ignore_errors=True)


def test_log_image_of_a_matplotlib_figure(nbd, nbdir):
    """log_image(plot=...) of a real matplotlib figure (skipped where
    Debian's python3-matplotlib is not installed: it is not a dependency)."""
    import subprocess
    if subprocess.run([PY, "-c", "import matplotlib"], capture_output=True).returncode:
        pytest.skip("python3-matplotlib is not installed")
    res = run_cells(nbd, nbdir, [
        "import matplotlib\nmatplotlib.use('Agg')\nimport matplotlib.pyplot as plt\n"
        "from azureml.core import Workspace, Experiment\nws = Workspace.from_config()",
        "run = Experiment(ws, 'plots').start_logging()\nplt.plot([1, 2, 3], [1, 4, 9])\n"
        "run.log_image('curve', plot=plt)\nfig = plt.figure()\n"
        "run.log_image('fig', plot=fig)\nrun.complete()\nm = run.get_metrics()\n"
        "run.download_file(m['curve'], 'curve.png')\n"
        "print(sorted(m), open('curve.png', 'rb').read()[:4])",
    ])
    assert "['curve', 'fig'] b'\\x89PNG'" in res[1]["stdout"], res[1]


def test_submit_child_inside_a_run(nbd, nbdir):
    (nbdir / "parent.py").write_text(
        "from azureml.core import Run, ScriptRunConfig\n"
        "run = Run.get_context()\n"
        "child = run.submit_child(ScriptRunConfig(source_directory='.', script='kid.py'),\n"
        "                         tags={'role': 'kid'})\n"
        "print('submitted', child.id, child.get_status() in ('Queued', 'Preparing', 'Scaling',"
        " 'Running', 'Completed'))\n"
        "print('children', [c.id for c in run.get_children()] == [child.id])\n")
    (nbdir / "kid.py").write_text("from azureml.core import Run\nRun.get_context().log('k', 1)\n")
    res = run_cells(nbd, nbdir, [
        "from azureml.core import Workspace, Experiment, ScriptRunConfig\n"
        "ws = Workspace.from_config()\nexp = Experiment(ws, 'parents')\n"
        "p = exp.submit(ScriptRunConfig(source_directory='.', script='parent.py'))\n"
        "p.wait_for_completion(show_output=True)",
        "kids = p.get_children()\nprint('kids', len(kids), kids[0].get_tags())\n"
        "kids[0].wait_for_completion()\nprint('kid', kids[0].get_status(), "
        "kids[0].get_metrics(), kids[0].parent)\n"
        "print('top', [r.id for r in exp.get_runs()] == [p.id])",
    ])
    out = [r["stdout"] for r in res]
    assert "submitted " in out[0] and " True" in out[0] and "children True" in out[0]
    assert "kids 1 {'role': 'kid'}" in out[1]
    assert "kid Completed {'k': 1}" in out[1]
    assert "top True" in out[1]
