"""The seed notebook's HyperDrive cells, unmodified, against a private runyardd
(docs/sdk.md "HyperDrive"; the daemon's side is docs/sweeps.md).

The cells (HD_BLOCKS) are those of the Azure ML notebook
train-hyperparameter-tune-deploy-with-sklearn, as written. They run after
the seed's blocks that define ws and src (test_notebook.SEED_BLOCKS) and the
upstream notebook's line that defines `experiment`, in a /usr/bin/python3
process as a notebook's kernel would (test_notebook.kernel).
"""

import ast
import json
import textwrap
import time

from conftest import DEADLINE
from test_notebook import blocks, kernel, nbd, workdir  # noqa: F401 (nbd, workdir: fixtures)

# The upstream notebook names the experiment in a cell of its own.
EXPERIMENT_BLOCK = """\
from azureml.core import Experiment

experiment = Experiment(workspace=ws, name='Tutorial-TrainIRIS')
"""

HD_BLOCKS = {
    "hyperdrive": """\
from azureml.widgets import RunDetails
from azureml.train.hyperdrive.runconfig import HyperDriveConfig
from azureml.train.hyperdrive.sampling import RandomParameterSampling
from azureml.train.hyperdrive.run import PrimaryMetricGoal
from azureml.train.hyperdrive.parameter_expressions import choice

param_sampling = RandomParameterSampling( {
    "--kernel": choice('linear', 'rbf', 'poly', 'sigmoid'),
    "--penalty": choice(0.5, 1, 1.5)
    }
)

hyperdrive_config = HyperDriveConfig(run_config=src,
                                     hyperparameter_sampling=param_sampling,
                                     primary_metric_name='Accuracy',
                                     primary_metric_goal=PrimaryMetricGoal.MAXIMIZE,
                                     max_total_runs=12,
                                     max_concurrent_runs=4)
""",
    "submit": """\
# start the HyperDrive run
hyperdrive_run = experiment.submit(hyperdrive_config)
""",
    "widget": """\
RunDetails(hyperdrive_run).show()
""",
    "wait": """\
hyperdrive_run.wait_for_completion(show_output=True)
""",
    "assert": """\
assert(hyperdrive_run.get_status() == "Completed")
""",
    "best": """\
best_run = hyperdrive_run.get_best_run_by_primary_metric()
print(best_run.get_details()['runDefinition']['arguments'])
""",
    "files": """\
print(best_run.get_file_names())
""",
    "register": """\
model = best_run.register_model(model_name='sklearn-iris', model_path='outputs/model.joblib')
""",
}

KERNELS = ("linear", "rbf", "poly", "sigmoid")
PENALTIES = ("0.5", "1", "1.5")


def accuracy(d, run_id):
    """A child's Accuracy, read with the protocol (not through the SDK)."""
    page = d.rpc("run.metrics", {"run": run_id, "name": "Accuracy"})
    return [p["value"] for p in page["points"]]


def test_seed_hyperdrive_cells_run_unchanged(nbd, workdir):
    code = (blocks("workspace", "custom_env", "script_run_config") + EXPERIMENT_BLOCK
            + "\n".join(HD_BLOCKS.values()) + textwrap.dedent("""
        import json
        print("=== checks")
        print(json.dumps({
            "sweep": hyperdrive_run.id,
            "best": best_run.id,
            "best_parent": best_run.parent.id,
            "sorted": hyperdrive_run.get_children_sorted_by_primary_metric(),
            "metrics": hyperdrive_run.get_metrics(),
            "children": sorted(c.id for c in hyperdrive_run.get_children()),
            "model": [model.name, model.version, model.run_id],
            "runs": [r.id for r in experiment.get_runs()],
        }))
        """))
    t0 = time.monotonic()
    p = kernel(nbd, workdir, code, timeout=DEADLINE * 10)
    took = time.monotonic() - t0
    print("the seed's HyperDrive cells took %.1fs (12 children, 4 at once)" % took)
    out, checks = p.stdout.split("=== checks\n")
    doc = json.loads(checks.splitlines()[0])
    sweep = doc["sweep"]
    lines = out.splitlines()

    # RunDetails(...).show() printed the sweep as a table, before the wait.
    assert lines[0] == "Run %s: Running" % sweep, out
    wait_at = lines.index("RunId: %s" % sweep)
    assert lines[1].split() == ["Run", "Status", "Accuracy", "Hyperparameters"] \
        or lines[1] == "(no children yet)", out
    # wait_for_completion(show_output=True): each child started and ended.
    progress = [l.split("] ", 1)[1] for l in lines[wait_at:]
                if l.startswith("[") and "] " in l]
    started = [l for l in progress if " started: " in l]
    ended = [l for l in progress if " Completed: Accuracy=" in l]
    assert len(started) == 12 and len(ended) == 12, out
    summary = lines.index("Execution Summary")
    assert lines[summary + 2] == "RunId: %s" % sweep and "Status: Completed" in lines, out

    # Twelve children, each recorded with the sweep as its parent.
    kids = nbd.rpc("run.list", {"parent": sweep, "limit": 1000})["runs"]
    assert len(kids) == 12
    assert all(k["parent"] == sweep and k["kind"] == "run" for k in kids)
    assert all(k["status"] == "Completed" for k in kids)
    assert sorted(k["id"] for k in kids) == doc["children"]
    assert nbd.show(sweep)["kind"] == "sweep"
    # experiment.get_runs() lists the sweep, not its children (as the cloud's).
    assert doc["runs"] == [sweep]

    # The best run is the child with the highest Accuracy, read separately.
    acc = {k["id"]: max(accuracy(nbd, k["id"])) for k in kids}
    top = max(acc.values())
    assert acc[doc["best"]] == top
    assert doc["best_parent"] == sweep
    assert doc["metrics"].keys() == acc.keys()
    assert all(doc["metrics"][i]["Accuracy"] == acc[i] for i in acc)
    ranked = doc["sorted"]
    assert [r["best_primary_metric"] for r in ranked] == sorted(acc.values(), reverse=True)
    assert ranked[0]["best_primary_metric"] == top and ranked[0]["status"] == "Completed"
    assert set(json.loads(ranked[0]["hyperparameters"])) == {"--kernel", "--penalty"}

    # The printed arguments: the sampled --kernel and --penalty, as the child ran them.
    printed = ast.literal_eval(next(l for l in lines[summary:] if l.startswith("['--")))
    assert printed[0] == "--kernel" and printed[1] in KERNELS, printed
    assert printed[2] == "--penalty" and printed[3] in PENALTIES, printed
    assert len(printed) == 4, printed
    best_doc = nbd.show(doc["best"])
    assert best_doc["command"][1:] == printed
    # get_file_names() and register_model work on the child as on a single run.
    files = ast.literal_eval(next(l for l in lines[summary:] if "outputs/model.joblib" in l))
    assert "outputs/model.joblib" in files and "user_logs/std_log.txt" in files
    assert doc["model"][:2] == ["sklearn-iris", 1] and doc["model"][2] == doc["best"]
    model = nbd.rpc("model.show", {"model": "sklearn-iris"})
    assert model["run"]["id"] == doc["best"]


def test_sweep_cancel_children_and_lookups(nbd, workdir):
    # A slow script: the sweep is canceled while its first child runs.
    (workdir / "slow.py").write_text(textwrap.dedent("""\
        import argparse, time
        from azureml.core import Run
        p = argparse.ArgumentParser()
        p.add_argument('--x', type=float)
        a = p.parse_args()
        run = Run.get_context()
        run.log('loss', a.x)
        print('child', a.x, flush=True)
        time.sleep(600)
        """))
    code = blocks("workspace", "curated_env") + EXPERIMENT_BLOCK + textwrap.dedent("""
        import time
        from azureml.core import Run, ScriptRunConfig
        from azureml.train.hyperdrive import (GridParameterSampling, HyperDriveConfig,
                                              HyperDriveRun, PrimaryMetricGoal,
                                              TruncationSelectionPolicy, choice)
        from azureml.widgets import RunDetails
        src = ScriptRunConfig(source_directory='.', script='slow.py', environment=sklearn_env)
        hd = experiment.submit(HyperDriveConfig(
            run_config=src, hyperparameter_sampling=GridParameterSampling({'--x': choice(1, 2, 3)}),
            primary_metric_name='loss', primary_metric_goal=PrimaryMetricGoal.MINIMIZE,
            max_concurrent_runs=1, policy=TruncationSelectionPolicy(20)))
        while not [c for c in hd.get_children() if c.get_status() == 'Running']:
            time.sleep(0.2)
        again = Run.get(ws, hd.id)
        print('=== again', type(again).__name__, again.id == hd.id, ws.get_run(hd.id).id == hd.id)
        print('=== canceled', hd.cancel())
        d = hd.wait_for_completion(show_output=False)
        print('=== status', d['status'], hd.get_status())
        print('=== again-cancel', hd.cancel())
        kids = list(hd.get_children())
        print('=== children', len(kids), sorted(c.get_status() for c in kids))
        RunDetails(hd).show()
        """)
    p = kernel(nbd, workdir, code)
    out = p.stdout
    assert "=== again HyperDriveRun True True" in out, out
    assert "=== canceled True" in out
    assert "=== status Canceled Canceled" in out, out
    assert "=== again-cancel False" in out
    # grid of 3, one at a time: one ran and was canceled; no more than the grid
    kids = [l for l in out.splitlines() if l.startswith("=== children")][0]
    n = int(kids.split()[2])
    assert 1 <= n <= 3 and "Completed" not in kids, out
    assert "Canceled" in out.split("=== children")[1]


def test_bad_config_fails_in_the_notebook_with_the_reason(nbd, workdir):
    code = blocks("workspace", "curated_env", "script_run_config") + textwrap.dedent("""
        from azureml.train.hyperdrive import (BayesianParameterSampling, BanditPolicy,
                                              HyperDriveConfig, normal)
        BayesianParameterSampling({'--penalty': normal(1, 0.5)})
        """)
    p = kernel(nbd, workdir, code, check=False)
    assert p.returncode != 0
    assert "UserErrorException: BayesianParameterSampling supports only choice, uniform, " \
        "quniform; parameter '--penalty' is normal(1, 0.5)" in p.stderr, p.stderr
