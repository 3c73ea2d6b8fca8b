"""azureml.train.hyperdrive without a daemon: what the parameter expressions
render to, what HyperDriveConfig refuses, the sweep.submit request it makes,
and how a HyperDriveRun reads sweep.show / sweep.explain (against a fake
workspace that answers from a script). docs/sdk.md "HyperDrive"."""

import io
import json
import math
import sys

import pytest

from test_notebook import SDK

sys.path.insert(0, str(SDK))
try:
    from azureml.core import Experiment, ScriptRunConfig
    from azureml.train import hyperdrive
    from azureml.train.hyperdrive import (BanditPolicy, BayesianParameterSampling,
                                          GridParameterSampling, HyperDriveConfig, HyperDriveRun,
                                          MedianStoppingPolicy, NoTerminationPolicy,
                                          PrimaryMetricGoal, RandomParameterSampling,
                                          TruncationSelectionPolicy)
    from azureml.train.hyperdrive.parameter_expressions import (
        choice, lognormal, loguniform, normal, qlognormal, qloguniform, qnormal, quniform,
        randint, uniform)
    from azureml.widgets import RunDetails
    from azureml.exceptions import UserErrorException as AzUserError
    from runyard._hyperdrive import UserErrorException
finally:
    sys.path.remove(str(SDK))


# -- parameter expressions ------------------------------------------------------------


@pytest.mark.parametrize("expr, text", [
    (choice('linear', 1.5), "choice('linear', 1.5)"),
    (choice('linear', 'rbf', 'poly', 'sigmoid'), "choice('linear', 'rbf', 'poly', 'sigmoid')"),
    (choice(0.5, 1, 1.5), "choice(0.5, 1, 1.5)"),
    (choice([0.5, 1, 1.5]), "choice(0.5, 1, 1.5)"),
    (choice(range(3)), "choice(0, 1, 2)"),
    (choice("it's", "a\\b"), r"choice('it\'s', 'a\\b')"),
    (choice(True), "choice('True')"),
    (choice(1e-05, -2), "choice(1e-05, -2)"),
    (randint(10), "randint(10)"),
    (uniform(0.1, 10), "uniform(0.1, 10)"),
    (loguniform(-3, 0), "loguniform(-3, 0)"),
    (normal(0, 1.5), "normal(0, 1.5)"),
    (lognormal(0.0, 1), "lognormal(0.0, 1)"),
    (quniform(1, 100, 5), "quniform(1, 100, 5)"),
    (qloguniform(0, 3, 1), "qloguniform(0, 3, 1)"),
    (qnormal(10, 2, 0.5), "qnormal(10, 2, 0.5)"),
    (qlognormal(1, 0.5, 1), "qlognormal(1, 0.5, 1)"),
])
def test_expressions_render_to_the_daemons_text(expr, text):
    assert str(expr) == text and repr(expr) == text


def test_expressions_are_the_cloud_sdks_lists():
    assert choice('a', 'b') == ["choice", [["a", "b"]]]
    assert uniform(0, 1) == ["uniform", [0, 1]]
    assert qnormal(0, 1, 2) == ["qnormal", [0, 1, 2]]
    # and the plain-list form is taken back by a sampling
    s = RandomParameterSampling({"--x": ["choice", [[1, 2]]], "--y": ["uniform", [0, 1]]})
    assert s._params() == {"--x": "choice(1, 2)", "--y": "uniform(0, 1)"}


@pytest.mark.parametrize("call, message", [
    (lambda: choice(), "at least one option"),
    (lambda: choice([]), "at least one option"),
    (lambda: choice(None), "numbers or strings"),
    (lambda: choice(float("nan")), "finite"),
    (lambda: randint(0), "upper must be an integer >= 1"),
    (lambda: randint(2.5), "upper must be an integer >= 1"),
    (lambda: uniform(1, 1), "must be less than"),
    (lambda: uniform("0", 1), "must be a number"),
    (lambda: loguniform(2, 1), "must be less than"),
    (lambda: normal(0, 0), "sigma must be > 0"),
    (lambda: lognormal(0, -1), "sigma must be > 0"),
    (lambda: quniform(0, 1, 0), "q must be > 0"),
    (lambda: qnormal(0, 1, math.inf), "finite"),
    (lambda: uniform(True, 2), "must be a number"),
])
def test_bad_expressions_are_refused(call, message):
    with pytest.raises(UserErrorException, match=message):
        call()


# -- sampling and policies --------------------------------------------------------------


def test_samplings_check_their_space():
    with pytest.raises(UserErrorException, match="non-empty dict"):
        RandomParameterSampling({})
    with pytest.raises(UserErrorException, match="not a parameter expression"):
        RandomParameterSampling({"--kernel": "linear"})
    with pytest.raises(UserErrorException, match="GridParameterSampling supports only choice"):
        GridParameterSampling({"--a": choice(1, 2), "--lr": uniform(0, 1)})
    with pytest.raises(UserErrorException, match="BayesianParameterSampling supports only "
                       "choice, uniform, quniform; parameter '--s' is normal"):
        BayesianParameterSampling({"--s": normal(0, 1)})
    with pytest.raises(UserErrorException, match="at most 64"):
        RandomParameterSampling({"--p%d" % i: choice(1) for i in range(65)})
    assert GridParameterSampling({"--a": choice(1, 2), "--b": choice('x', 'y', 'z')})._size() == 6
    # the cloud's properties are accepted and ignored
    RandomParameterSampling({"--a": choice(1)}, properties={"rerun": True})


def test_policies_and_their_request_form():
    assert BanditPolicy(slack_factor=0.1, evaluation_interval=2)._policy() == {
        "name": "bandit", "slack_factor": 0.1, "evaluation_interval": 2, "delay_evaluation": 0}
    assert BanditPolicy(slack_amount=0.2, delay_evaluation=5)._policy()["slack_amount"] == 0.2
    assert MedianStoppingPolicy(evaluation_interval=1, delay_evaluation=5)._policy() == {
        "name": "median", "evaluation_interval": 1, "delay_evaluation": 5}
    assert TruncationSelectionPolicy(20, exclude_finished_jobs=True)._policy() == {
        "name": "truncation", "truncation_percentage": 20, "evaluation_interval": 1,
        "delay_evaluation": 0, "exclude_finished_jobs": True}
    assert NoTerminationPolicy()._policy() == {"name": "none"}
    with pytest.raises(UserErrorException, match="exactly one of slack_factor"):
        BanditPolicy()
    with pytest.raises(UserErrorException, match="exactly one of slack_factor"):
        BanditPolicy(slack_factor=0.1, slack_amount=0.1)
    with pytest.raises(UserErrorException, match="slack_factor must be > 0"):
        BanditPolicy(slack_factor=0)
    with pytest.raises(UserErrorException, match="evaluation_interval"):
        MedianStoppingPolicy(evaluation_interval=0)
    with pytest.raises(UserErrorException, match="delay_evaluation"):
        MedianStoppingPolicy(delay_evaluation=-1)
    with pytest.raises(UserErrorException, match="truncation_percentage must be in 1..99"):
        TruncationSelectionPolicy(100)


# -- the configuration --------------------------------------------------------------------


def seed_src():
    """The seed's ScriptRunConfig (an environment by name, so nothing asks a daemon)."""
    return ScriptRunConfig(source_directory='/tmp', script='train_iris.py',
                           arguments=['--kernel', 'linear', '--penalty', 1.0],
                           environment='sklearn')


def seed_sampling():
    return RandomParameterSampling({"--kernel": choice('linear', 'rbf', 'poly', 'sigmoid'),
                                    "--penalty": choice(0.5, 1, 1.5)})


def test_seed_config_makes_the_sweep_submit_request():
    hd = HyperDriveConfig(run_config=seed_src(), hyperparameter_sampling=seed_sampling(),
                          primary_metric_name='Accuracy',
                          primary_metric_goal=PrimaryMetricGoal.MAXIMIZE,
                          max_total_runs=12, max_concurrent_runs=4)
    args = hd._submit_args(None, "Tutorial-TrainIRIS")
    # the swept flags' fixed values are dropped: each child's come from the sweep
    assert args["command"] == ["train_iris.py"]
    assert args["source"] == "/tmp" and args["experiment"] == "Tutorial-TrainIRIS"
    assert args["environment"] == "sklearn"
    assert args["metric"] == "Accuracy" and args["goal"] == "maximize"
    assert args["sampling"] == "random"
    assert args["params"] == {"--kernel": "choice('linear', 'rbf', 'poly', 'sigmoid')",
                              "--penalty": "choice(0.5, 1, 1.5)"}
    assert list(args["params"]) == ["--kernel", "--penalty"]   # in order
    assert args["max_total"] == 12 and args["max_concurrent"] == 4
    assert args["max_duration"] == 10080
    assert "policy" not in args and "seed" not in args
    assert hd.primary_metric_goal is PrimaryMetricGoal.MAXIMIZE and hd.max_total_runs == 12
    json.dumps(args)    # all of it goes on the wire


def test_config_options_reach_the_request():
    src = ScriptRunConfig(source_directory='/tmp', script='t.py',
                          arguments=['--data', 'x', '--lr=0.5', '--epochs', 3, '--flag'])
    hd = HyperDriveConfig(GridParameterSampling({"--lr": choice(0.1, 0.01),
                                                 "--flag": choice('a')}),
                          'loss', 'minimize', policy=NoTerminationPolicy(),
                          max_duration_minutes=30, run_config=src)
    hd.runyard_seed = 7
    args = hd._submit_args(None, "e")
    assert args["command"] == ["t.py", "--data", "x", "--epochs", "3"]
    assert args["sampling"] == "grid" and "max_total" not in args and "max_concurrent" not in args
    assert args["goal"] == "minimize" and args["policy"] == {"name": "none"}
    assert args["max_duration"] == 30 and args["seed"] == 7
    hd = HyperDriveConfig(seed_sampling(), 'Accuracy', PrimaryMetricGoal.MINIMIZE, 5,
                          policy=BanditPolicy(slack_factor=0.1, evaluation_interval=2),
                          max_duration_minutes=None, estimator=seed_src(), debug_flag=True,
                          custom_run_id="ignored")
    args = hd._submit_args(None, "e")
    assert args["policy"]["name"] == "bandit" and "max_duration" not in args


@pytest.mark.parametrize("kwargs, message", [
    ({"hyperparameter_sampling": None}, "missing required argument: hyperparameter_sampling"),
    ({"primary_metric_name": None, "primary_metric_goal": None},
     "missing required arguments: primary_metric_name, primary_metric_goal"),
    ({"run_config": None}, "give run_config=ScriptRunConfig"),
    ({"run_config": "train.py"}, "run_config must be a ScriptRunConfig, not str"),
    ({"estimator": object()}, "give one of run_config and estimator"),
    ({"pipeline": object()}, "pipelines are not supported"),
    ({"resume_from": object()}, "warm start"),
    ({"hyperparameter_sampling": {"--a": choice(1)}}, "must be a RandomParameterSampling"),
    ({"primary_metric_name": ""}, "primary_metric_name must be a non-empty string"),
    ({"primary_metric_goal": "up"}, "PrimaryMetricGoal.MAXIMIZE"),
    ({"max_total_runs": None}, "max_total_runs is required"),
    ({"max_total_runs": 0}, r"max_total_runs must be an integer in 1..100000"),
    ({"max_total_runs": True}, r"max_total_runs must be an integer"),
    ({"max_concurrent_runs": 1001}, r"max_concurrent_runs must be an integer in 1..1000"),
    ({"max_duration_minutes": 0}, "max_duration_minutes must be > 0"),
    ({"policy": "bandit"}, "policy must be a BanditPolicy"),
    ({"hyperparameter_sampling": BayesianParameterSampling({"--a": uniform(0, 1)}),
      "policy": MedianStoppingPolicy()}, "BayesianParameterSampling takes no early termination"),
])
def test_config_refuses(kwargs, message):
    full = dict(run_config=seed_src(), hyperparameter_sampling=seed_sampling(),
                primary_metric_name='Accuracy', primary_metric_goal=PrimaryMetricGoal.MAXIMIZE,
                max_total_runs=12)
    full.update(kwargs)
    with pytest.raises(UserErrorException, match=message) as e:
        HyperDriveConfig(**full)
    # the SDK's kinds of error: a user error, and a ValueError
    assert isinstance(e.value, AzUserError) and isinstance(e.value, ValueError)


def test_bayesian_takes_no_policy_or_none():
    for policy in (None, NoTerminationPolicy()):
        HyperDriveConfig(BayesianParameterSampling({"--a": quniform(0, 10, 1)}), 'm', 'maximize',
                         10, policy=policy, run_config=seed_src())


def test_everything_is_exported_from_the_package():
    for name in hyperdrive.__all__:
        assert getattr(hyperdrive, name) is not None
    assert hyperdrive.HyperDriveRunConfig is HyperDriveConfig


# -- the run, against a scripted workspace -------------------------------------------------


KIDS = [  # sweep.explain's children, as the daemon would report them mid-sweep and at the end
    {"id": "e_2", "seq": 2, "status": "Completed", "params": {"--kernel": "rbf"},
     "values": [0.9], "score": 0.9, "decision": None},
    {"id": "e_3", "seq": 3, "status": "Completed", "params": {"--kernel": "linear"},
     "values": [0.97], "score": 0.97, "decision": None},
    {"id": "e_4", "seq": 4, "status": "Failed", "params": {"--kernel": "poly"},
     "values": [], "score": None, "decision": None},
    {"id": "e_5", "seq": 5, "status": "Canceled", "params": {"--kernel": "sigmoid"},
     "values": [0.2], "score": 0.2,
     "decision": {"message": "bandit: 0.2 < 0.97/(1+0.1) = 0.881818 at interval 1"}},
]


class FakeWorkspace:
    """Answers the ops a HyperDriveRun asks, from a script of sweep states."""

    name = "fake"
    socket_path = "/nonexistent"

    def __init__(self, states):
        self.states = list(states)   # (status, children) per sweep.show
        self.calls = []
        self.status, self.kids = self.states[0]

    def _call(self, op, args=None, timeout=30.0):
        self.calls.append((op, args))
        if op == "sweep.submit":
            return {"id": "e_1", "seq": 1, "status": "Running"}
        if op == "run.show":
            rid = args["run"]
            if rid == "e_1":
                return {"id": "e_1", "seq": 1, "experiment": "e", "kind": "sweep",
                        "parent": None, "status": self.status, "command": ["train.py"]}
            return {"id": rid, "seq": int(rid[2:]), "experiment": "e", "kind": "run",
                    "parent": "e_1", "status": "Completed", "command": ["train.py"]}
        if op == "sweep.show":
            if self.states:
                self.status, self.kids = self.states.pop(0)
            best = max((k for k in self.kids if k["score"] is not None and k["status"] != "Failed"),
                       key=lambda k: k["score"], default=None)
            return {"id": "e_1", "seq": 1, "status": self.status, "trials": len(self.kids),
                    "definition": {"metric": "Accuracy", "goal": "maximize"},
                    "counts": {"Completed": 2, "Failed": 1, "Canceled": 1},
                    "best": best and {"id": best["id"], "seq": best["seq"],
                                      "value": best["score"], "params": best["params"],
                                      "arguments": [], "status": best["status"]},
                    "decisions": [], "error": None}
        if op == "sweep.explain":
            return {"id": "e_1", "children": self.kids}
        if op == "run.list":
            assert args["parent"] == "e_1"
            return {"runs": [self._call("run.show", {"run": k["id"]})
                             for k in reversed(self.kids)]}
        if op == "run.metrics":
            return {"metrics": []}
        if op == "run.outputs":
            return {"artifacts": []}
        raise AssertionError("unexpected op %s" % op)


def submitted(states, capsys=None):
    ws = FakeWorkspace(states)
    hd = HyperDriveConfig(run_config=seed_src(), hyperparameter_sampling=seed_sampling(),
                          primary_metric_name='Accuracy',
                          primary_metric_goal=PrimaryMetricGoal.MAXIMIZE, max_total_runs=4)
    run = Experiment(ws, "e").submit(hd)
    return ws, run


def test_submit_dispatches_to_sweep_submit_and_returns_a_hyperdrive_run():
    ws, run = submitted([("Running", [])])
    assert isinstance(run, HyperDriveRun) and run.id == "e_1"
    op, args = ws.calls[0]
    assert op == "sweep.submit" and args["params"]["--penalty"] == "choice(0.5, 1, 1.5)"
    with pytest.raises(TypeError, match="ScriptRunConfig or a HyperDriveConfig"):
        Experiment(ws, "e").submit("train.py")


def test_children_sorted_best_and_metrics():
    ws, run = submitted([("Completed", KIDS)])
    rows = run.get_children_sorted_by_primary_metric()
    assert [r["run_id"] for r in rows] == ["e_3", "e_2", "e_5", "e_4"]
    assert rows[0] == {"run_id": "e_3", "hyperparameters": '{"--kernel": "linear"}',
                       "best_primary_metric": 0.97, "status": "Completed"}
    assert [r["run_id"] for r in run.get_children_sorted_by_primary_metric(
        top=2, reverse=True)] == ["e_5", "e_2"]
    assert len(run.get_children_sorted_by_primary_metric(discard_no_metric=True)) == 3
    best = run.get_best_run_by_primary_metric()
    assert best.id == "e_3" and best.parent.id == "e_1" and isinstance(best.parent, HyperDriveRun)
    assert sorted(c.id for c in run.get_children()) == ["e_2", "e_3", "e_4", "e_5"]
    assert sorted(run.get_metrics()) == ["e_2", "e_3", "e_4", "e_5"]
    assert run.get_hyperparameters()["e_2"] == '{"--kernel": "rbf"}'
    assert run.get_status() == "Completed"


def test_wait_for_completion_prints_children_as_they_go(capsys, monkeypatch):
    monkeypatch.setattr(HyperDriveRun, "POLL_SECONDS", 0)
    running = [dict(k, status="Running", score=None) for k in KIDS[:2]]
    queued = [dict(k, status="Queued", values=[], score=None) for k in KIDS[2:]]
    ws, run = submitted([("Running", []), ("Running", running + queued),
                         ("Running", KIDS[:2] + queued), ("Completed", KIDS)])
    details = run.wait_for_completion(show_output=True)
    out = capsys.readouterr().out
    assert out.startswith("RunId: e_1\n")
    lines = [l.split("] ", 1)[1] for l in out.splitlines() if l.startswith("[")]
    assert lines == [
        'child e_2 started: {"--kernel": "rbf"}',
        'child e_3 started: {"--kernel": "linear"}',
        "child e_2 Completed: Accuracy=0.9",
        "child e_3 Completed: Accuracy=0.97",
        'child e_4 started: {"--kernel": "poly"}',    # began and ended between two polls
        "child e_4 Failed: Accuracy=-",
        'child e_5 started: {"--kernel": "sigmoid"}',
        "child e_5 Canceled: Accuracy=0.2 (stopped early: bandit: 0.2 < 0.97/(1+0.1) = "
        "0.881818 at interval 1)",
    ]
    assert "Execution Summary" in out and 'Best: e_3 (#3) Accuracy=0.97' in out
    assert details["status"] == "Completed"
    assert details["properties"]["best_child_run_id"] == "e_3"
    assert sum(1 for op, _ in ws.calls if op == "sweep.show") >= 4


def test_run_details_prints_a_table_and_returns_none(capsys):
    ws, run = submitted([("Completed", KIDS)])
    assert RunDetails(run).show() is None
    out = capsys.readouterr().out.splitlines()
    assert out[0] == "Run e_1: Completed"
    assert out[1].split() == ["Run", "Status", "Accuracy", "Hyperparameters"]
    assert out[3].split()[:3] == ["e_3", "Completed", "0.97"]
    assert len(out) == 3 + len(KIDS)
    with pytest.raises(UserErrorException, match="RunDetails takes a run"):
        RunDetails("e_1")
