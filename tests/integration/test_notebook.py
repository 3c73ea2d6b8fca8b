"""The seed walk-through's notebook code, unmodified, against a private runyardd
(issue #9; docs/sdk.md).

Each code block of the seed is copied below as written (SEED_BLOCKS). Two
edits are allowed and made here, nowhere else: the conda file's python pin
becomes this machine's python (the seed's 3.6.2 is not installed), and the
training script (examples/notebook/train_iris.py) writes np.str / np.float,
which current numpy removed, as str / float. The blocks run in a separate
/usr/bin/python3 process (as a notebook's kernel would), with runyard's
sdk/python on PYTHONPATH and RUNYARD_SOCKET naming the private daemon.
"""

import json
import os
import pathlib
import re
import shutil
import subprocess
import sys
import textwrap

import pytest

from conftest import DEADLINE, PY, REPO

SDK = REPO / "sdk" / "python"
EXAMPLE = REPO / "examples" / "notebook"
SEED_DIR = pathlib.Path(os.environ.get("RUNYARD_SEED_DIR", "/work/shared/seed"))
HERE = subprocess.run([PY, "-c", "import sys; print('%d.%d' % sys.version_info[:2])"],
                      capture_output=True, text=True, check=True).stdout.strip()

# The seed's code blocks, verbatim (test_seed_blocks_are_the_seeds checks them
# against the seed when it is there).
SEED_BLOCKS = {
    "workspace": """\
from azureml.core import Workspace

ws = Workspace.from_config()
""",
    "curated_env": """\
from azureml.core import Environment

sklearn_env = Environment.get(workspace=ws, name='AzureML-Tutorial')
""",
    "conda_yaml": """\
dependencies:
  - python=3.6.2
  - scikit-learn
  - numpy
  - pip:
    - azureml-defaults
""",
    "custom_env": """\
from azureml.core import Environment

sklearn_env = Environment.from_conda_specification(name='sklearn-env', file_path='conda_dependencies.yml')
""",
    "script_run_config": """\
from azureml.core import ScriptRunConfig

src = ScriptRunConfig(source_directory='.',
                      script='train_iris.py',
                      arguments=['--kernel', 'linear', '--penalty', 1.0],
                      environment=sklearn_env)
""",
    "script_run_config_cluster": """\
from azureml.core import ScriptRunConfig

compute_target = ws.compute_targets['<my-cluster-name>']
src = ScriptRunConfig(source_directory='.',
                      script='train_iris.py',
                      arguments=['--kernel', 'linear', '--penalty', 1.0],
                      compute_target=compute_target,
                      environment=sklearn_env)
""",
    "submit": """\
from azureml.core import Experiment

run = Experiment(ws,'Tutorial-TrainIRIS').submit(src)
run.wait_for_completion(show_output=True)
""",
    "save_model": """\
import joblib

joblib.dump(svm_model_linear, 'model.joblib')
""",
    "register_model": """\
from azureml.core import Model
from azureml.core.resource_configuration import ResourceConfiguration

model = run.register_model(model_name='sklearn-iris', 
                           model_path='outputs/model.joblib',
                           model_framework=Model.Framework.SCIKITLEARN,
                           model_framework_version='0.19.1',
                           resource_configuration=ResourceConfiguration(cpu=1, memory_in_gb=0.5))
""",
    "deploy": """\
web_service = Model.deploy(ws, "scikit-learn-service", [model])
""",
    "inference_yaml": """\
    - azureml-defaults
    - inference-schema[numpy-support]
    - scikit-learn
    - numpy
""",
}

# The config.json a cloud notebook has: its fields are accepted and ignored.
CLOUD_CONFIG = {"subscription_id": "00000000-0000-0000-0000-000000000000",
                "resource_group": "rg-iris", "workspace_name": "ws-iris"}


def seed_blocks(text):
    """The fenced code blocks of the seed document, in order."""
    return [m.group(1) for m in re.finditer(r"^```[^\n]*\n(.*?)^```", text, re.S | re.M)]


def local_pin(yaml_text):
    """The one allowed edit of the conda file: this machine's python."""
    assert "python=3.6.2" in yaml_text
    return yaml_text.replace("python=3.6.2", "python=%s" % HERE)


@pytest.fixture
def nbd(daemon_factory):
    """A private daemon that finds Debian's python3.X (the pin) first on PATH."""
    return daemon_factory(env={"PATH": "/usr/bin:/bin:" + os.environ.get("PATH", "")})


@pytest.fixture
def workdir(tmp_path):
    """The notebook's directory: the training script, the seed's conda file
    (local pin), and a cloud config.json."""
    d = tmp_path / "nb"
    d.mkdir()
    shutil.copy(EXAMPLE / "train_iris.py", d / "train_iris.py")
    (d / "conda_dependencies.yml").write_text(local_pin(SEED_BLOCKS["conda_yaml"]))
    (d / "config.json").write_text(json.dumps(CLOUD_CONFIG))
    return d


def kernel(daemon, cwd, code, check=True, env=None, timeout=None):
    """Run code as a notebook kernel would: /usr/bin/python3 in cwd, runyard's
    SDK on PYTHONPATH, the private daemon's socket in RUNYARD_SOCKET."""
    full = dict(os.environ, PYTHONPATH=str(SDK), PYTHONUNBUFFERED="1")
    if daemon is not None:
        full["RUNYARD_SOCKET"] = daemon.socket
    full.update(env or {})
    p = subprocess.run([PY, "-c", code], cwd=cwd, env=full, capture_output=True, text=True,
                       timeout=timeout or DEADLINE * 4)
    if check:
        assert p.returncode == 0, "kernel failed (%d)\nstdout:\n%s\nstderr:\n%s" % (
            p.returncode, p.stdout[-4000:], p.stderr[-4000:])
    return p


def blocks(*names):
    return "\n".join(SEED_BLOCKS[n] for n in names)


# -- the seed, as written ---------------------------------------------------------------


def test_seed_blocks_are_the_seeds():
    files = sorted(SEED_DIR.glob("*.txt")) if SEED_DIR.is_dir() else []
    if not files:
        pytest.skip("the seed document is not at %s" % SEED_DIR)
    found = seed_blocks(files[0].read_text())
    norm = [textwrap.dedent(b).strip() for b in found]
    for name, text in SEED_BLOCKS.items():
        assert textwrap.dedent(text).strip() in norm, "block %r is not in the seed" % name
    assert len(found) == len(SEED_BLOCKS)


def test_seed_walkthrough_runs_unchanged(nbd, workdir):
    code = blocks("workspace", "curated_env", "custom_env", "script_run_config", "submit",
                  "register_model", "deploy") + textwrap.dedent("""
        import json
        print("=== checks")
        print(json.dumps({
            "status": run.get_status(),
            "metrics": run.get_metrics(),
            "details": run.get_details(),
            "files": run.get_file_names(),
            "model": [model.name, model.version, model.model_framework,
                      model.model_framework_version],
            "env": [sklearn_env.name, sklearn_env.version],
            "ws": [ws.subscription_id, ws.resource_group, ws.name],
        }))
        web_service.wait_for_deployment(show_output=True)
        print("scored", web_service.run(json.dumps({"data": [[5.1, 3.5, 1.4, 0.2]]})))
        """)
    p = kernel(nbd, workdir, code)
    out, checks = p.stdout.split("=== checks\n")
    # wait_for_completion(show_output=True): RunId, the live output, the summary.
    lines = out.splitlines()
    assert lines[0].startswith("RunId: Tutorial-TrainIRIS_"), out
    run_id = lines[0].split(": ", 1)[1]
    acc = lines.index("Accuracy of SVM classifier on test set: 0.97")
    summary = lines.index("Execution Summary")
    assert 0 < acc < summary, out
    assert "[[13  0  0]" in lines[acc + 1], out
    assert lines[summary + 2] == "RunId: %s" % run_id, out
    # The environment was built while the run waited: its build log comes first.
    build = lines.index("Environment sklearn-env:1: built for this run")
    assert 0 < build < acc, out
    assert "runyard: skipping azureml-defaults: provided by runyard's own compatibility " \
        "module" in lines[build:acc], out
    doc = json.loads(checks.splitlines()[0])
    assert doc["status"] == "Completed"
    assert doc["metrics"] == {"Kernel type": "linear", "Penalty": 1,
                              "Accuracy": pytest.approx(0.9736842105263158)}
    det = doc["details"]
    assert det["runId"] == run_id and det["status"] == "Completed" and det["target"] == "local"
    assert det["startTimeUtc"] and det["endTimeUtc"] and "error" not in det
    assert det["runDefinition"]["script"] == "train_iris.py"
    assert det["runDefinition"]["arguments"] == ["--kernel", "linear", "--penalty", "1.0"]
    assert det["runDefinition"]["environment"] == {"name": "sklearn-env", "version": "1"}
    assert det["properties"]["environment"] == "sklearn-env:1"
    assert "user_logs/std_log.txt" in det["logFiles"]
    assert "outputs/model.joblib" in doc["files"]
    assert doc["model"] == ["sklearn-iris", 1, "ScikitLearn", "0.19.1"]
    assert doc["env"] == ["sklearn-env", "1"]
    assert doc["ws"] == ["00000000-0000-0000-0000-000000000000", "rg-iris", "ws-iris"]
    assert "scored [0]" in p.stdout
    # The conda file became a venv over Debian's site-packages; azureml-defaults
    # is runyard's own module.
    env = nbd.rpc("env.show", {"environment": "sklearn-env"})
    assert env["definition"]["kind"] == "venv"
    assert env["definition"]["skipped"] == ["azureml-defaults"]
    assert env["definition"]["system_site_packages"] is True
    assert nbd.rpc("service.show", {"service": "scikit-learn-service"})["state"] == "Healthy"


def test_curated_environment_block_runs_the_iris_script(nbd, workdir):
    code = blocks("workspace", "curated_env", "script_run_config", "submit") + \
        "print('===', run.get_details()['properties']['environment'], sklearn_env.name)\n"
    p = kernel(nbd, workdir, code)
    assert "Accuracy of SVM classifier on test set: 0.97" in p.stdout
    assert "=== sklearn:1 AzureML-Tutorial" in p.stdout
    assert nbd.rpc("env.list")["environments"][1]["name"] == "sklearn"


def test_cluster_block_names_the_known_targets_then_runs_on_one(nbd, workdir):
    # As written, '<my-cluster-name>' is a placeholder: a KeyError that says
    # which targets there are.
    code = blocks("workspace", "custom_env", "script_run_config_cluster")
    p = kernel(nbd, workdir, code, check=False)
    assert p.returncode != 0
    assert "KeyError" in p.stderr and "'<my-cluster-name>'" in p.stderr, p.stderr
    assert "local" in p.stderr and "runyard compute create" in p.stderr, p.stderr
    # With a target this daemon has, the block submits there.
    code = code.replace("<my-cluster-name>", "local") + SEED_BLOCKS["submit"] + \
        "print('=== target', run.get_details()['target'])\n"
    p = kernel(nbd, workdir, code)
    assert "=== target local" in p.stdout


def test_save_model_block_in_a_training_script(nbd, workdir):
    # The seed's block is added to a training script: it runs inside a run.
    (workdir / "train_save.py").write_text(textwrap.dedent("""\
        from sklearn import datasets
        from sklearn.svm import SVC
        iris = datasets.load_iris()
        svm_model_linear = SVC(kernel='linear').fit(iris.data, iris.target)
        """) + SEED_BLOCKS["save_model"] + textwrap.dedent("""\
        import os
        os.makedirs('outputs', exist_ok=True)
        os.replace('model.joblib', 'outputs/model.joblib')
        print('saved')
        """))
    code = blocks("workspace", "curated_env") + textwrap.dedent("""
        from azureml.core import Experiment, ScriptRunConfig
        src = ScriptRunConfig(source_directory='.', script='train_save.py',
                              environment=sklearn_env)
        run = Experiment(ws, 'save').submit(src)
        run.wait_for_completion(show_output=True)
        print('===', run.get_file_names())
        """)
    p = kernel(nbd, workdir, code)
    assert "saved" in p.stdout and "'outputs/model.joblib'" in p.stdout


def test_notebook_example_walkthrough(nbd, tmp_path):
    d = tmp_path / "example"
    shutil.copytree(EXAMPLE, d)
    yml = d / "conda_dependencies.yml"
    yml.write_text(re.sub(r"python=[0-9.]+", "python=%s" % HERE, yml.read_text()))
    p = subprocess.run([PY, "notebook.py"], cwd=d, capture_output=True, text=True,
                       timeout=DEADLINE * 4,
                       env=dict(os.environ, PYTHONPATH=str(SDK), RUNYARD_SOCKET=nbd.socket))
    assert p.returncode == 0, (p.stdout[-3000:], p.stderr[-3000:])
    out = p.stdout
    assert out.startswith("RunId: Tutorial-TrainIRIS_"), out
    assert out.index("Accuracy of SVM classifier") < out.index("Execution Summary"), out
    assert "'Accuracy': 0.97" in out and "[0, 2]" in out, out
    assert 'operation "Succeeded"' in out
    model = nbd.rpc("model.show", {"model": "sklearn-iris"})
    assert model["framework"] == "ScikitLearn" and model["run"]["seq"] == 1
    assert nbd.rpc("service.list")["services"] == []


def test_notebook_ipynb_has_the_scripts_cells():
    nb = json.loads((EXAMPLE / "notebook.ipynb").read_text())
    code = ["".join(c["source"]).strip() for c in nb["cells"] if c["cell_type"] == "code"]
    script = (EXAMPLE / "notebook.py").read_text()
    cells = [c.strip() for c in re.split(r"^# %%.*$", script, flags=re.M)[1:]]
    want = [c for c in cells if c and not all(l.startswith("#") for l in c.splitlines())]
    assert code == want


# -- the failure paths ----------------------------------------------------------------


def test_no_daemon_says_how_to_start_one(tmp_path):
    sock = str(tmp_path / "nobody.sock")
    p = kernel(None, tmp_path, SEED_BLOCKS["workspace"], check=False,
               env={"RUNYARD_SOCKET": sock})
    assert p.returncode != 0
    assert "no runyardd answers at %s" % sock in p.stderr, p.stderr
    assert "runyard daemon start" in p.stderr, p.stderr
    # A config.json's runyard_socket picks the socket when RUNYARD_SOCKET is unset.
    (tmp_path / "config.json").write_text(json.dumps(dict(CLOUD_CONFIG, runyard_socket=sock)))
    env = {k: v for k, v in os.environ.items() if k != "RUNYARD_SOCKET"}
    env["PYTHONPATH"] = str(SDK)
    p = subprocess.run([PY, "-c", SEED_BLOCKS["workspace"]], cwd=tmp_path, env=env,
                       capture_output=True, text=True, timeout=60)
    assert p.returncode != 0 and "no runyardd answers at %s" % sock in p.stderr, p.stderr
    assert "runyard_socket" in p.stderr


def test_config_runyard_socket_finds_the_daemon(nbd, tmp_path):
    sub = tmp_path / "project" / "notebooks"
    sub.mkdir(parents=True)
    (tmp_path / "project" / ".azureml").mkdir()
    (tmp_path / "project" / ".azureml" / "config.json").write_text(
        json.dumps(dict(CLOUD_CONFIG, runyard_socket=nbd.socket)))
    env = {k: v for k, v in os.environ.items() if k != "RUNYARD_SOCKET"}
    env["PYTHONPATH"] = str(SDK)
    p = subprocess.run([PY, "-c", SEED_BLOCKS["workspace"] + "print(ws.socket_path, ws.name)"],
                       cwd=sub, env=env, capture_output=True, text=True, timeout=60)
    assert p.returncode == 0, p.stderr
    assert p.stdout.strip() == "%s ws-iris" % nbd.socket


def test_unknown_environment_is_a_clear_error(nbd, workdir):
    code = SEED_BLOCKS["workspace"] + \
        "from azureml.core import Environment\nEnvironment.get(workspace=ws, name='nope-env')\n"
    p = kernel(nbd, workdir, code, check=False)
    assert p.returncode != 0
    assert "no environment named 'nope-env'" in p.stderr, p.stderr
    assert "sklearn" in p.stderr and "system" in p.stderr, p.stderr
    # A ScriptRunConfig naming an unknown environment fails at submit.
    code = SEED_BLOCKS["workspace"] + textwrap.dedent("""
        from azureml.core import Experiment, ScriptRunConfig
        src = ScriptRunConfig(source_directory='.', script='train_iris.py', environment='nope-env')
        Experiment(ws, 'x').submit(src)
        """)
    p = kernel(nbd, workdir, code, check=False)
    assert p.returncode != 0 and "nope-env" in p.stderr and "NotFound" in p.stderr, p.stderr


def test_failing_script_raises_from_wait_for_completion(nbd, workdir):
    (workdir / "fail.py").write_text("print('starting')\nraise ValueError('boom')\n")
    code = blocks("workspace", "curated_env") + textwrap.dedent("""
        from azureml.core import Experiment, ScriptRunConfig
        from azureml.exceptions import ActivityFailedException
        src = ScriptRunConfig(source_directory='.', script='fail.py', environment=sklearn_env)
        run = Experiment(ws, 'fails').submit(src)
        try:
            run.wait_for_completion(show_output=True)
        except ActivityFailedException as e:
            print('=== raised', type(e).__name__)
            print(str(e))
        else:
            print('=== did not raise')
        d = run.wait_for_completion(raise_on_error=False)
        print('=== quiet', d['status'], d['error']['error']['code'])
        """)
    p = kernel(nbd, workdir, code)
    out = p.stdout
    assert out.startswith("RunId: fails_"), out
    assert out.index("starting") < out.index("ValueError: boom") < out.index("Execution Summary")
    assert "Error occurred: User program failed with ValueError: boom" in out, out
    assert "=== raised ActivityFailedException" in out, out
    assert '"code": "UserError"' in out and "ValueError: boom" in out.split("=== raised")[1]
    assert "=== quiet Failed UserError" in out


# -- the rest of the surface ------------------------------------------------------------


def test_run_details_files_download_and_cancel(nbd, workdir):
    (workdir / "slow.py").write_text("import time\nprint('sleeping', flush=True)\n"
                                     "time.sleep(600)\n")
    code = blocks("workspace", "curated_env", "script_run_config") + textwrap.dedent("""
        import json, os, time
        from azureml.core import Experiment, Run, ScriptRunConfig
        exp = Experiment(ws, 'Tutorial-TrainIRIS')
        run = exp.submit(src)
        d = run.wait_for_completion()
        print('=== status', d['status'], run.get_status(), run.id == d['runId'])
        run.download_file('outputs/model.joblib', output_file_path='got/model.joblib')
        print('=== model', os.path.getsize('got/model.joblib') > 0)
        run.download_file('user_logs/std_log.txt', 'std_log.txt')
        print('=== log', open('std_log.txt').read().splitlines()[0])
        again = Run.get(ws, run.id)
        print('=== again', again.get_metrics('Accuracy'), again.number)
        slow = exp.submit(ScriptRunConfig(source_directory='.', script='slow.py',
                                          environment=sklearn_env, max_run_duration_seconds=900))
        while 'sleeping' not in open(slow.download_file('user_logs/std_log.txt', 'slow.txt')).read():
            time.sleep(0.1)
        print('=== running', slow.get_status())
        slow.cancel()
        d = slow.wait_for_completion()
        print('=== canceled', d['status'], d['runDefinition']['maxRunDurationSeconds'])
        print('=== runs', len(list(exp.get_runs())), sorted(ws.experiments))
        """)
    p = kernel(nbd, workdir, code)
    out = p.stdout
    assert "=== status Completed Completed True" in out
    assert "=== model True" in out
    assert "=== log Accuracy of SVM classifier on test set: 0.97" in out
    assert "=== again {'Accuracy': 0.9736842105263158} 1" in out
    assert "=== running Running" in out
    assert "=== canceled Canceled 900" in out
    assert "=== runs 2 ['Tutorial-TrainIRIS']" in out


def test_environments_pip_interpreter_variables_register(nbd, workdir):
    (workdir / "requirements.txt").write_text("scikit-learn\nnumpy\nazureml-core\n")
    (workdir / "show.py").write_text(
        "import os, sys\nimport sklearn\nprint('GREETING', os.environ.get('GREETING'))\n"
        "print('PREFIX', sys.prefix)\n")
    code = SEED_BLOCKS["workspace"] + textwrap.dedent("""
        from azureml.core import Environment, Experiment, ScriptRunConfig
        env = Environment.from_pip_requirements(name='pip-env', file_path='requirements.txt')
        env.environment_variables = {'GREETING': 'hello'}
        env.register(ws)
        v1 = env.version
        env.register(ws)
        same = env.version
        env.environment_variables['GREETING'] = 'hi'
        run = Experiment(ws, 'envs').submit(
            ScriptRunConfig(source_directory='.', script='show.py', environment=env))
        run.wait_for_completion(show_output=True)
        print('=== versions', v1, same, env.version)
        um = Environment('user-managed')
        um.python.user_managed_dependencies = True
        um.python.interpreter_path = '/usr/bin/python3'
        run = Experiment(ws, 'envs').submit(
            ScriptRunConfig(source_directory='.', script='show.py', environment=um))
        run.wait_for_completion(show_output=True)
        print('=== um', um.version, Environment.get(ws, 'user-managed').python.user_managed_dependencies)
        print('=== list', sorted(Environment.list(ws)))
        """)
    p = kernel(nbd, workdir, code)
    out = p.stdout
    assert "=== versions 1 1 2" in out, out
    assert "GREETING hi" in out and "GREETING None" in out, out
    assert "PREFIX /usr\n" in out, out
    assert "=== um 1 True" in out
    assert "=== list ['pip-env', 'sklearn', 'system', 'user-managed']" in out
    assert "built for this run" in out    # pip-env:1 was built while the run waited
    d = nbd.rpc("env.show", {"environment": "pip-env:2"})["definition"]
    assert d["requirements"] == ["scikit-learn", "numpy"] and d["skipped"] == ["azureml-core"]


def test_builtin_environments_keep_their_definition(nbd, workdir):
    (workdir / "show.py").write_text("import os, sys\nprint('X', os.environ.get('X'), sys.executable)\n")
    code = SEED_BLOCKS["workspace"] + textwrap.dedent("""
        from azureml.core import Environment, Experiment, ScriptRunConfig
        from azureml.exceptions import AzureMLException
        env = Environment.get(ws, 'AzureML-sklearn-0.24-ubuntu18.04-py37-cpu')
        env.environment_variables['X'] = 'from-env'
        run = Experiment(ws, 'builtin').submit(
            ScriptRunConfig(source_directory='.', script='show.py', environment=env))
        run.wait_for_completion(show_output=True)
        print('=== env', run.get_details()['properties']['environment'])
        env.python.interpreter_path = '/bin/false'
        try:
            env.register(ws)
        except AzureMLException as e:
            print('=== refused', e)
        clone = Environment.get(ws, 'sklearn').clone('my-sklearn')
        clone.register(ws)
        print('=== clone', clone.version, clone.python.user_managed_dependencies)
        """)
    p = kernel(nbd, workdir, code)
    out = p.stdout
    assert "X from-env /usr/bin/python3" in out, out
    assert "=== env sklearn:1" in out
    assert "=== refused" in out and "env.clone(" in out, out
    assert "=== clone 1 True" in out


def test_arguments_mixed_types_and_inputs_are_replaced():
    sys.path.insert(0, str(SDK))
    try:
        from runyard._notebook import ScriptRunConfig
    finally:
        sys.path.remove(str(SDK))

    class StandIn:
        """What a dataset's as_mount() gives: _runyard_input()."""

        def __init__(self, name):
            self.name = name

        def _runyard_input(self):
            return {"name": self.name, "source": "/data/" + self.name, "mode": "mount"}

    src = ScriptRunConfig(source_directory="/tmp", script="train.py",
                          arguments=["--kernel", "linear", "--penalty", 1.0, "--n", 3,
                                     "--data", StandIn("iris"), StandIn("extra")])
    args = src._submit_args(None, "exp")
    assert args["command"] == ["train.py", "--kernel", "linear", "--penalty", "1.0", "--n", "3",
                               "--data", "inputs/iris", "inputs/extra"]
    assert args["inputs"] == [{"name": "iris", "source": "/data/iris", "mode": "mount"},
                              {"name": "extra", "source": "/data/extra", "mode": "mount"}]
    assert args["source"] == "/tmp" and args["experiment"] == "exp"
    plain = ScriptRunConfig(source_directory="/tmp", script="train.py",
                            arguments=["--penalty", 0.5], compute_target="local")
    args = plain._submit_args(None, "exp")
    assert "inputs" not in args and "target" not in args and "timeout" not in args
    cmd = ScriptRunConfig(source_directory="/tmp", command="python train.py --lr 0.1",
                          compute_target="gpu", max_run_duration_seconds=60)
    args = cmd._submit_args(None, "exp")
    assert args["command"] == ["train.py", "--lr", "0.1"]
    assert args["target"] == "gpu" and args["timeout"] == 60 and "nodes" not in args
    # node_count, the cloud's resource field of a run, goes to a cluster target.
    cmd.run_config.node_count = 2
    assert cmd._submit_args(None, "exp")["nodes"] == 2
    plain.run_config.node_count = 3
    with pytest.raises(ValueError, match="node_count 3 needs a cluster compute target"):
        plain._submit_args(None, "exp")

    class Distributed:
        node_count = 4
    dist = ScriptRunConfig(source_directory="/tmp", script="train.py", compute_target="gpu",
                           distributed_job_config=Distributed())
    assert dist._submit_args(None, "exp")["nodes"] == 4


def test_input_datasets_in_the_run(nbd, workdir):
    (workdir / "inputs.py").write_text(
        "from azureml.core import Run\nprint('INPUTS', sorted(Run.get_context()"
        ".input_datasets.items()))\n")
    code = blocks("workspace", "curated_env") + textwrap.dedent("""
        from azureml.core import Experiment, ScriptRunConfig
        src = ScriptRunConfig(source_directory='.', script='inputs.py', environment=sklearn_env)
        src.run_config.environment_variables = {'RUNYARD_INPUT_iris': '/x/inputs/iris',
                                                'RUNYARD_INPUT_': 'ignored'}
        run = Experiment(ws, 'inputs').submit(src)
        run.wait_for_completion(show_output=True)
        """)
    p = kernel(nbd, workdir, code)
    assert "INPUTS [('iris', '/x/inputs/iris')]" in p.stdout, p.stdout
