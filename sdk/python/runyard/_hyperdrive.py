"""Hyperparameter sweeps from a notebook: the cloud SDK's azureml.train.hyperdrive
on top of runyardd's sweep ops (docs/sdk.md, docs/protocol.md "Sweeps").

    from azureml.train.hyperdrive import (HyperDriveConfig, RandomParameterSampling,
                                          PrimaryMetricGoal, choice)
    sampling = RandomParameterSampling({"--kernel": choice('linear', 'rbf'),
                                        "--penalty": choice(0.5, 1, 1.5)})
    config = HyperDriveConfig(run_config=src, hyperparameter_sampling=sampling,
                              primary_metric_name='Accuracy',
                              primary_metric_goal=PrimaryMetricGoal.MAXIMIZE,
                              max_total_runs=12, max_concurrent_runs=4)
    hd = experiment.submit(config)          # sweep.submit
    hd.wait_for_completion(show_output=True)
    best = hd.get_best_run_by_primary_metric()

A sweep is a run of kind "sweep"; its children are ordinary runs, so a child
is the SDK's ordinary run object (RunHandle). Sampling, scheduling and early
termination all happen in the daemon: this module only renders the
configuration as sweep.submit's arguments and reads sweep.show,
sweep.explain and run.list back.

Pure standard library.
"""

import enum
import json
import math
import sys
import time

from runyard._models import RunyardError, _as_workspace
from runyard._notebook import TERMINAL, ActivityFailedException, RunHandle, ScriptRunConfig
from runyard._run import DaemonError
# A HyperDrive configuration the cloud SDK would refuse too, or one that
# runyard cannot run (the message says which and why).
from runyard._run import UserErrorException


# -- parameter expressions ------------------------------------------------------------


class ParameterExpression(list):
    """What a parameter expression function returns. It is the cloud SDK's
    value, ["choice", [[...]]] or ["uniform", [lo, hi]], so code that looks
    inside one still works; str() is the text sweep.submit takes,
    "choice('linear', 1.5)"."""

    def __init__(self, function, args, text):
        super().__init__([function, args])
        self.function = function
        self.text = text

    def __str__(self):
        return self.text

    def __repr__(self):
        return self.text


def _number(v, function, what):
    # bool is an int to Python, but True as a bound is always a mistake
    if isinstance(v, bool) or not isinstance(v, (int, float)):
        raise UserErrorException("%s: %s must be a number, not %r" % (function, what, v))
    if isinstance(v, float) and not math.isfinite(v):
        raise UserErrorException("%s: %s must be finite, not %r" % (function, what, v))
    return v


def _render(v):
    """One value as the daemon reads it: integers as digits, floats in
    Python's shortest round-trip form (1.5, 1e-05), strings in single quotes
    with backslash and quote escaped."""
    if isinstance(v, str):
        return "'%s'" % v.replace("\\", "\\\\").replace("'", "\\'")
    if isinstance(v, int):
        return str(v)
    return repr(float(v))


def _expr(function, values, args):
    return ParameterExpression(function, args,
                               "%s(%s)" % (function, ", ".join(_render(v) for v in values)))


def choice(*options):
    """A value from options: choice('linear', 'rbf') or choice([0.5, 1, 1.5]).
    Numbers and strings; a bool is passed as its text ('True')."""
    if len(options) == 1 and isinstance(options[0], (list, tuple, range)):
        options = options[0]
    options = list(options)
    if not options:
        raise UserErrorException("choice: give at least one option")
    out = []
    for o in options:
        if isinstance(o, bool):
            o = str(o)   # on a command line it is its text either way
        elif isinstance(o, (int, float)):
            _number(o, "choice", "an option")
        elif not isinstance(o, str):
            raise UserErrorException("choice: options are numbers or strings, not %s (%r)"
                                     % (type(o).__name__, o))
        out.append(o)
    return _expr("choice", out, [out])


def randint(upper):
    """An integer in 0..upper-1."""
    if isinstance(upper, bool) or not isinstance(upper, int) or upper < 1:
        raise UserErrorException("randint: upper must be an integer >= 1, not %r" % (upper,))
    return _expr("randint", [upper], [upper])


def _bounds(function, lo, hi):
    _number(lo, function, "min_value")
    _number(hi, function, "max_value")
    if not lo < hi:
        raise UserErrorException("%s: min_value (%r) must be less than max_value (%r)"
                                 % (function, lo, hi))


def _sigma(function, mu, sigma):
    _number(mu, function, "mu")
    _number(sigma, function, "sigma")
    if sigma <= 0:
        raise UserErrorException("%s: sigma must be > 0, not %r" % (function, sigma))


def _q(function, q):
    _number(q, function, "q")
    if q <= 0:
        raise UserErrorException("%s: q must be > 0, not %r" % (function, q))


def uniform(min_value, max_value):
    """A real number uniformly in [min_value, max_value]."""
    _bounds("uniform", min_value, max_value)
    return _expr("uniform", [min_value, max_value], [min_value, max_value])


def loguniform(min_value, max_value):
    """exp(uniform(min_value, max_value))."""
    _bounds("loguniform", min_value, max_value)
    return _expr("loguniform", [min_value, max_value], [min_value, max_value])


def normal(mu, sigma):
    """A real number from the normal distribution N(mu, sigma)."""
    _sigma("normal", mu, sigma)
    return _expr("normal", [mu, sigma], [mu, sigma])


def lognormal(mu, sigma):
    """exp(normal(mu, sigma))."""
    _sigma("lognormal", mu, sigma)
    return _expr("lognormal", [mu, sigma], [mu, sigma])


def quniform(min_value, max_value, q):
    """round(uniform(min_value, max_value) / q) * q."""
    _bounds("quniform", min_value, max_value)
    _q("quniform", q)
    return _expr("quniform", [min_value, max_value, q], [min_value, max_value, q])


def qloguniform(min_value, max_value, q):
    """round(exp(uniform(min_value, max_value)) / q) * q."""
    _bounds("qloguniform", min_value, max_value)
    _q("qloguniform", q)
    return _expr("qloguniform", [min_value, max_value, q], [min_value, max_value, q])


def qnormal(mu, sigma, q):
    """round(normal(mu, sigma) / q) * q."""
    _sigma("qnormal", mu, sigma)
    _q("qnormal", q)
    return _expr("qnormal", [mu, sigma, q], [mu, sigma, q])


def qlognormal(mu, sigma, q):
    """round(exp(normal(mu, sigma)) / q) * q."""
    _sigma("qlognormal", mu, sigma)
    _q("qlognormal", q)
    return _expr("qlognormal", [mu, sigma, q], [mu, sigma, q])


_FUNCTIONS = {f.__name__: f for f in (choice, randint, uniform, loguniform, normal, lognormal,
                                      quniform, qloguniform, qnormal, qlognormal)}


def _as_expression(name, value):
    """A parameter's expression; the cloud SDK's plain-list form
    (["choice", [[1, 2]]], as stored in JSON) is accepted too."""
    if isinstance(value, ParameterExpression):
        return value
    if (isinstance(value, (list, tuple)) and len(value) == 2 and value[0] in _FUNCTIONS
            and isinstance(value[1], (list, tuple))):
        args = value[1]
        if value[0] == "choice":
            return choice(list(args[0]) if len(args) == 1 else list(args))
        return _FUNCTIONS[value[0]](*args)
    raise UserErrorException(
        "parameter %r: %r is not a parameter expression; use choice(...), uniform(...), ... "
        "from azureml.train.hyperdrive.parameter_expressions" % (name, value))


# -- sampling ---------------------------------------------------------------------------


class HyperParameterSampling:
    """A search space {parameter name: expression} and how it is sampled.
    Each name reaches the script as written, followed by the value drawn:
    "--kernel": choice(...) gives `--kernel rbf`."""

    _sampling = None
    _allowed = None   # the expression functions this sampling can draw from

    def __init__(self, parameter_space, properties=None):
        if not isinstance(parameter_space, dict) or not parameter_space:
            raise UserErrorException("%s: parameter_space must be a non-empty dict "
                                     "{name: expression}" % type(self).__name__)
        if len(parameter_space) > 64:
            raise UserErrorException("%s: at most 64 parameters (runyardd's limit), not %d"
                                     % (type(self).__name__, len(parameter_space)))
        space = {}
        for name, value in parameter_space.items():
            if not isinstance(name, str) or not name:
                raise UserErrorException("%s: parameter names are non-empty strings, not %r"
                                         % (type(self).__name__, name))
            expr = _as_expression(name, value)
            if self._allowed is not None and expr.function not in self._allowed:
                raise UserErrorException(
                    "%s supports only %s; parameter %r is %s" % (
                        type(self).__name__, ", ".join(self._allowed), name, expr.text))
            space[name] = expr
        self._parameter_space = space
        # The cloud's properties (rerun settings and the like) mean nothing here.
        self._properties = dict(properties or {})

    def __repr__(self):
        return "%s(%r)" % (type(self).__name__, self._parameter_space)

    def to_json(self):
        return {"name": self._sampling.capitalize(),
                "parameter_space": {k: list(v) for k, v in self._parameter_space.items()}}

    def _params(self):
        return {k: v.text for k, v in self._parameter_space.items()}


class RandomParameterSampling(HyperParameterSampling):
    """Each configuration drawn at random from every parameter's distribution."""
    _sampling = "random"


class GridParameterSampling(HyperParameterSampling):
    """Every combination of the choices, in order; choice() parameters only."""
    _sampling = "grid"
    _allowed = ("choice",)

    def _size(self):
        n = 1
        for expr in self._parameter_space.values():
            n *= len(expr[1][0])
        return n


class BayesianParameterSampling(HyperParameterSampling):
    """Configurations chosen from the scores of the finished ones (a tree-
    structured Parzen estimator in runyardd); choice, uniform and quniform
    only, and no early termination policy."""
    _sampling = "bayesian"
    _allowed = ("choice", "uniform", "quniform")


# -- early termination policies ----------------------------------------------------------


def _interval(cls, evaluation_interval, delay_evaluation):
    if isinstance(evaluation_interval, bool) or not isinstance(evaluation_interval, int) \
            or evaluation_interval < 1:
        raise UserErrorException("%s: evaluation_interval must be an integer >= 1, not %r"
                                 % (cls, evaluation_interval))
    if isinstance(delay_evaluation, bool) or not isinstance(delay_evaluation, int) \
            or delay_evaluation < 0:
        raise UserErrorException("%s: delay_evaluation must be an integer >= 0, not %r"
                                 % (cls, delay_evaluation))


class EarlyTerminationPolicy:
    """Which running children the daemon stops early, and when."""

    _name = None

    def __init__(self, evaluation_interval=1, delay_evaluation=0):
        _interval(type(self).__name__, evaluation_interval, delay_evaluation)
        self.evaluation_interval = evaluation_interval
        self.delay_evaluation = delay_evaluation

    def _policy(self):
        """sweep.submit's "policy" as an object: JSON keeps the types (a
        boolean stays a boolean), where the text form would not."""
        return {"name": self._name, "evaluation_interval": self.evaluation_interval,
                "delay_evaluation": self.delay_evaluation}

    def __repr__(self):
        return "%s(%s)" % (type(self).__name__, ", ".join(
            "%s=%r" % kv for kv in self._policy().items() if kv[0] != "name"))


class BanditPolicy(EarlyTerminationPolicy):
    """Stop a child whose primary metric is not within slack_factor (a ratio)
    or slack_amount (an absolute difference) of the best child's."""

    _name = "bandit"

    def __init__(self, evaluation_interval=1, slack_factor=None, slack_amount=None,
                 delay_evaluation=0):
        super().__init__(evaluation_interval, delay_evaluation)
        if (slack_factor is None) == (slack_amount is None):
            raise UserErrorException("BanditPolicy: give exactly one of slack_factor and "
                                     "slack_amount")
        for what, v in (("slack_factor", slack_factor), ("slack_amount", slack_amount)):
            if v is not None and (_number(v, "BanditPolicy", what) <= 0):
                raise UserErrorException("BanditPolicy: %s must be > 0, not %r" % (what, v))
        self.slack_factor = slack_factor
        self.slack_amount = slack_amount

    def _policy(self):
        p = super()._policy()
        if self.slack_factor is not None:
            p["slack_factor"] = self.slack_factor
        else:
            p["slack_amount"] = self.slack_amount
        return p


class MedianStoppingPolicy(EarlyTerminationPolicy):
    """Stop a child whose best primary metric is worse than the median of the
    running averages of all children at the same interval."""

    _name = "median"


class TruncationSelectionPolicy(EarlyTerminationPolicy):
    """At each evaluation, stop the lowest truncation_percentage percent of the
    children by primary metric."""

    _name = "truncation"

    def __init__(self, truncation_percentage, evaluation_interval=1, delay_evaluation=0,
                 exclude_finished_jobs=False):
        super().__init__(evaluation_interval, delay_evaluation)
        _number(truncation_percentage, "TruncationSelectionPolicy", "truncation_percentage")
        if not 1 <= truncation_percentage <= 99:
            raise UserErrorException("TruncationSelectionPolicy: truncation_percentage must be "
                                     "in 1..99, not %r" % (truncation_percentage,))
        self.truncation_percentage = truncation_percentage
        self.exclude_finished_jobs = bool(exclude_finished_jobs)

    def _policy(self):
        p = super()._policy()
        p["truncation_percentage"] = self.truncation_percentage
        p["exclude_finished_jobs"] = self.exclude_finished_jobs
        return p


class NoTerminationPolicy(EarlyTerminationPolicy):
    """Every child runs to its end."""

    _name = "none"

    def __init__(self):
        super().__init__()

    def _policy(self):
        return {"name": "none"}


# -- the configuration -------------------------------------------------------------------


class PrimaryMetricGoal(enum.Enum):
    """Whether the primary metric is to be maximized or minimized."""
    MAXIMIZE = "MAXIMIZE"
    MINIMIZE = "MINIMIZE"


def _goal(goal):
    if isinstance(goal, PrimaryMetricGoal):
        return goal.value.lower()
    if isinstance(goal, str) and goal.lower() in ("maximize", "minimize"):
        return goal.lower()
    raise UserErrorException("primary_metric_goal must be PrimaryMetricGoal.MAXIMIZE or "
                             "PrimaryMetricGoal.MINIMIZE, not %r" % (goal,))


def _count(value, what, upper):
    if isinstance(value, bool) or not isinstance(value, int) or not 1 <= value <= upper:
        raise UserErrorException("HyperDriveConfig: %s must be an integer in 1..%d, not %r"
                                 % (what, upper, value))
    return value


class HyperDriveConfig:
    """A sweep: which script (run_config, a ScriptRunConfig), which search
    space and sampling, which metric to optimize, how many children in all
    and at once, for how long, and which early termination policy.

    Accepted and ignored: debug_flag, custom_run_id. Refused with a clear
    error: estimator (other than a ScriptRunConfig), pipeline, resume_from
    and resume_child_runs, which runyard has no counterpart for."""

    def __init__(self, hyperparameter_sampling=None, primary_metric_name=None,
                 primary_metric_goal=None, max_total_runs=None, max_concurrent_runs=None,
                 max_duration_minutes=10080, policy=None, estimator=None, run_config=None,
                 resume_from=None, resume_child_runs=None, pipeline=None, debug_flag=None,
                 custom_run_id=None):
        # The cloud SDK takes the first three positionally, so they stay
        # first; missing ones are refused here with what is missing.
        missing = [n for n, v in (("hyperparameter_sampling", hyperparameter_sampling),
                                  ("primary_metric_name", primary_metric_name),
                                  ("primary_metric_goal", primary_metric_goal)) if v is None]
        if missing:
            raise UserErrorException("HyperDriveConfig: missing required argument%s: %s"
                                     % ("s" if len(missing) > 1 else "", ", ".join(missing)))
        if pipeline is not None:
            raise UserErrorException("HyperDriveConfig: pipelines are not supported by runyard; "
                                     "give run_config=ScriptRunConfig(...)")
        if resume_from is not None or resume_child_runs is not None:
            raise UserErrorException("HyperDriveConfig: resume_from and resume_child_runs (warm "
                                     "start) are not supported by runyard")
        if estimator is not None and run_config is not None:
            raise UserErrorException("HyperDriveConfig: give one of run_config and estimator, "
                                     "not both")
        config = run_config if run_config is not None else estimator
        if config is None:
            raise UserErrorException("HyperDriveConfig: give run_config=ScriptRunConfig(...), "
                                     "the script each child runs")
        if not isinstance(config, ScriptRunConfig):
            raise UserErrorException(
                "HyperDriveConfig: %s must be a ScriptRunConfig, not %s (estimators are not "
                "supported by runyard)" % ("run_config" if run_config is not None else
                                           "estimator", type(config).__name__))
        if not isinstance(hyperparameter_sampling, HyperParameterSampling):
            raise UserErrorException(
                "HyperDriveConfig: hyperparameter_sampling must be a RandomParameterSampling, "
                "GridParameterSampling or BayesianParameterSampling, not %s"
                % type(hyperparameter_sampling).__name__)
        if not isinstance(primary_metric_name, str) or not primary_metric_name:
            raise UserErrorException("HyperDriveConfig: primary_metric_name must be a non-empty "
                                     "string, not %r" % (primary_metric_name,))
        goal = _goal(primary_metric_goal)
        if max_total_runs is None:
            if not isinstance(hyperparameter_sampling, GridParameterSampling):
                # The daemon needs an upper bound; only a grid has one of its own.
                raise UserErrorException("HyperDriveConfig: max_total_runs is required (except "
                                         "with GridParameterSampling, whose size bounds it)")
        else:
            _count(max_total_runs, "max_total_runs", 100000)
        if max_concurrent_runs is not None:
            _count(max_concurrent_runs, "max_concurrent_runs", 1000)
        if max_duration_minutes is not None:
            _number(max_duration_minutes, "HyperDriveConfig", "max_duration_minutes")
            if max_duration_minutes <= 0:
                raise UserErrorException("HyperDriveConfig: max_duration_minutes must be > 0, "
                                         "not %r" % (max_duration_minutes,))
        if policy is not None and not isinstance(policy, EarlyTerminationPolicy):
            raise UserErrorException(
                "HyperDriveConfig: policy must be a BanditPolicy, MedianStoppingPolicy, "
                "TruncationSelectionPolicy or NoTerminationPolicy, not %s" % type(policy).__name__)
        if (isinstance(hyperparameter_sampling, BayesianParameterSampling) and policy is not None
                and not isinstance(policy, NoTerminationPolicy)):
            raise UserErrorException("HyperDriveConfig: BayesianParameterSampling takes no early "
                                     "termination policy (give policy=None)")
        self._run_config = config
        self._hyperparameter_sampling = hyperparameter_sampling
        self._primary_metric_name = primary_metric_name
        self._primary_metric_goal = goal
        self._max_total_runs = max_total_runs
        self._max_concurrent_runs = max_concurrent_runs
        self._max_duration_minutes = max_duration_minutes
        self._policy = policy
        # runyard's own: a fixed seed makes the sweep draw the same
        # configurations again (the daemon draws and records one otherwise).
        self.runyard_seed = None

    # The cloud original's read-only attributes.
    run_config = property(lambda self: self._run_config)
    estimator = property(lambda self: self._run_config)
    hyperparameter_sampling = property(lambda self: self._hyperparameter_sampling)
    primary_metric_name = property(lambda self: self._primary_metric_name)
    primary_metric_goal = property(lambda self: PrimaryMetricGoal(
        self._primary_metric_goal.upper()))
    max_total_runs = property(lambda self: self._max_total_runs)
    max_concurrent_runs = property(lambda self: self._max_concurrent_runs)
    max_duration_minutes = property(lambda self: self._max_duration_minutes)
    policy = property(lambda self: self._policy)

    def __repr__(self):
        return ("HyperDriveConfig(%s, primary_metric_name=%r, primary_metric_goal=%s, "
                "max_total_runs=%r, max_concurrent_runs=%r)" % (
                    self._hyperparameter_sampling, self._primary_metric_name,
                    self._primary_metric_goal, self._max_total_runs, self._max_concurrent_runs))

    def _submit_args(self, ws, experiment):
        """The sweep.submit request: the run_config's run.submit request plus
        the sweep's fields."""
        args = self._run_config._submit_args(ws, experiment)
        space = self._hyperparameter_sampling._parameter_space
        args["command"] = _without_swept(args["command"], space)
        args["metric"] = self._primary_metric_name
        args["goal"] = self._primary_metric_goal
        args["sampling"] = self._hyperparameter_sampling._sampling
        args["params"] = self._hyperparameter_sampling._params()
        if self._max_total_runs is not None:
            args["max_total"] = self._max_total_runs
        if self._max_concurrent_runs is not None:
            args["max_concurrent"] = self._max_concurrent_runs
        if self._max_duration_minutes is not None:
            args["max_duration"] = self._max_duration_minutes
        if self._policy is not None:
            args["policy"] = self._policy._policy()
        if self.runyard_seed is not None:
            args["seed"] = self.runyard_seed
        return args


def _without_swept(command, space):
    """The command without fixed arguments that a parameter replaces.

    The daemon appends NAME VALUE to every child's command; the seed's
    ScriptRunConfig already passes `--kernel linear --penalty 1.0`, and
    argparse would take the last value anyway, but each child's arguments
    then read `--kernel linear ... --kernel rbf`. As in the cloud, the
    sampled value replaces the fixed one: `NAME VALUE` and `NAME=VALUE`
    pairs in the fixed arguments are dropped for every swept NAME."""
    head, rest = command[:1], command[1:]
    out, i = [], 0
    while i < len(rest):
        a = rest[i]
        if a in space:
            # the flag and its value, unless what follows is another flag
            nxt = rest[i + 1] if i + 1 < len(rest) else None
            i += 2 if nxt is not None and not nxt.startswith("--") else 1
            continue
        if "=" in a and a.split("=", 1)[0] in space:
            i += 1
            continue
        out.append(a)
        i += 1
    return head + out


HyperDriveRunConfig = HyperDriveConfig   # the older name of the same configuration


# -- the sweep run ------------------------------------------------------------------------


_PENDING = ("Queued", "Preparing", "Scaling")


def _short(params):
    return json.dumps(params, separators=(", ", ": "))


class HyperDriveRun(RunHandle):
    """A sweep seen from the notebook: what Experiment.submit(HyperDriveConfig)
    returns. Its children are ordinary runs (RunHandle)."""

    def __init__(self, experiment, run_id, hyperdrive_config=None, _doc=None, **kwargs):
        super().__init__(experiment.workspace, run_id, _doc=_doc)
        if self._doc.get("kind") not in (None, "sweep"):
            raise RunyardError("run %s is not a sweep (HyperDrive run)" % run_id)
        self.hyperdrive_config = hyperdrive_config
        self._sweep = None

    def __repr__(self):
        return "Run(Experiment: %s,\nId: %s,\nType: hyperdrive,\nStatus: %s)" % (
            self.experiment.name, self.id, self._doc.get("status"))

    # -- the daemon's view -------------------------------------------------------------

    def _show_sweep(self):
        try:
            self._sweep = self.workspace._call("sweep.show", {"sweep": self.id})
        except DaemonError as e:
            if e.code == "NotFound":
                raise RunyardError("sweep not found: %s" % self.id) from None
            raise
        self._doc["status"] = self._sweep["status"]
        return self._sweep

    def _explain(self):
        return self.workspace._call("sweep.explain", {"sweep": self.id})

    @property
    def _metric(self):
        return (self._sweep or self._show_sweep())["definition"]["metric"]

    @property
    def _maximize(self):
        return (self._sweep or self._show_sweep())["definition"]["goal"] == "maximize"

    def get_status(self):
        return self._show_sweep()["status"]

    def get_details(self):
        """The sweep's details in the cloud's shape, with its definition and
        counts under "properties" and "hyperdrive"."""
        sw = self._show_sweep()
        details = self._details(self._show())
        d = sw["definition"]
        details["properties"].update({
            "primary_metric_config": json.dumps({"name": d["metric"], "goal": d["goal"]}),
            "num_children": str(sw.get("trials", 0)),
            "best_child_run_id": (sw.get("best") or {}).get("id"),
            "score": (sw.get("best") or {}).get("value"),
        })
        details["hyperdrive"] = {"definition": d, "counts": sw.get("counts"),
                                 "best": sw.get("best"), "trials": sw.get("trials")}
        if sw.get("error") and "error" not in details:
            details["error"] = {"error": dict(sw["error"])}
        return details

    def get_hyperparameters(self):
        """{child run id: its hyperparameters as a JSON text}, as the cloud's."""
        return {c["id"]: json.dumps(c.get("params") or {})
                for c in self._explain().get("children", [])}

    # -- children ----------------------------------------------------------------------

    def get_children(self, recursive=False, tags=None, properties=None, type=None,
                     status=None, _rehydrate_runs=True):
        """The children (ordinary runs), newest first, optionally of one status."""
        docs = self.workspace._call("run.list", {"parent": self.id, "limit": 100000})["runs"]
        for d in docs:
            if status is not None and d.get("status") != status:
                continue
            yield RunHandle(self.workspace, d["id"], _doc=d)

    def get_children_sorted_by_primary_metric(self, top=0, reverse=False,
                                              discard_no_metric=False):
        """[{"run_id", "hyperparameters" (JSON text), "best_primary_metric",
        "status"}], best first by the goal (reverse: worst first); children
        without a score come last (or not at all with discard_no_metric)."""
        kids = self._explain().get("children", [])
        scored = [c for c in kids if isinstance(c.get("score"), (int, float))]
        rest = [c for c in kids if not isinstance(c.get("score"), (int, float))]
        scored.sort(key=lambda c: (c["score"], -c["seq"]), reverse=self._maximize != reverse)
        rest.sort(key=lambda c: c["seq"])
        out = [{"run_id": c["id"], "hyperparameters": json.dumps(c.get("params") or {}),
                "best_primary_metric": c.get("score"), "status": c.get("status")}
               for c in scored + ([] if discard_no_metric else rest)]
        return out[:top] if top else out

    def get_best_run_by_primary_metric(self, include_failed=True, include_canceled=True,
                                       include_resume_from_runs=True):
        """The child with the best primary metric (sweep.show's "best"), or
        None when no child has logged it."""
        best = self._show_sweep().get("best")
        if not best:
            return None
        if not include_canceled and best.get("status") == "Canceled":
            ranked = [c for c in self.get_children_sorted_by_primary_metric(
                discard_no_metric=True) if c["status"] != "Canceled"]
            return RunHandle(self.workspace, ranked[0]["run_id"]) if ranked else None
        return RunHandle(self.workspace, best["id"])

    def get_metrics(self, name=None, recursive=False, run_type=None, populate=False):
        """{child run id: that child's metrics}, as the cloud's."""
        return {c.id: c.get_metrics(name) for c in self.get_children()}

    # -- control -----------------------------------------------------------------------

    def cancel(self):
        """Cancel the sweep and its queued and running children; True when it
        was canceled, False when it had already ended."""
        try:
            self.workspace._call("sweep.cancel", {"sweep": self.id})
        except DaemonError as e:
            if e.code == "Conflict":
                return False
            raise
        return True

    def fail(self, *args, **kwargs):
        raise UserErrorException("fail() is not supported for a HyperDrive run")

    def register_model(self, *args, **kwargs):
        raise UserErrorException("a HyperDrive run has no model of its own; register one of "
                                 "its children's: get_best_run_by_primary_metric()"
                                 ".register_model(...)")

    # -- waiting -----------------------------------------------------------------------

    POLL_SECONDS = 1.0   # sweep.explain reads every child's series: not too often

    def wait_for_completion(self, show_output=False, wait_post_processing=False,
                            raise_on_error=True):
        """Wait until the sweep has ended and return its details. show_output
        prints a line when a child starts and when it ends (with its status and
        primary metric, and why the policy stopped it), then a summary."""
        out = sys.stdout
        if show_output:
            out.write("RunId: %s\nWeb View: runyard show %d\n\n" % (self.id, self.number))
            out.write("Streaming azureml-logs/hyperdrive.txt\n%s\n\n" % ("=" * 38))
            out.flush()
        seen = {}   # child id -> the status last printed
        while True:
            sw = self._show_sweep()
            done = sw["status"] in TERMINAL
            if show_output:
                self._print_progress(out, seen, sw)
            if done:
                break
            time.sleep(self.POLL_SECONDS)
        details = self.get_details()
        if show_output:
            best = sw.get("best")
            out.write("\nExecution Summary\n=================\nRunId: %s\nWeb View: runyard "
                      "show %d\n\n" % (self.id, self.number))
            out.write("Status: %s\nChildren: %s\n" % (sw["status"], ", ".join(
                "%s %d" % kv for kv in sorted((sw.get("counts") or {}).items()) if kv[1])))
            if best:
                out.write("Best: %s (#%d) %s=%s %s\n" % (best["id"], best["seq"], self._metric,
                                                         best["value"], _short(best["params"])))
            if details.get("error"):
                out.write("Error occurred: %s\n" % details["error"]["error"].get("message"))
            out.flush()
        if raise_on_error and sw["status"] == "Failed":
            raise ActivityFailedException(
                "Activity Failed:\n%s" % json.dumps(details.get("error"), indent=4),
                details.get("error"))
        return details

    def _print_progress(self, out, seen, sw):
        try:
            kids = self._explain().get("children", [])
        except DaemonError:
            return
        metric = sw["definition"]["metric"]
        stamp = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())
        for c in sorted(kids, key=lambda c: c["seq"]):
            st, before = c.get("status"), seen.get(c["id"])
            if st == before:
                continue
            was_started = before is not None and before not in _PENDING
            # a child that began and ended between two polls is shown starting
            # too, unless it never ran (canceled while queued)
            if st not in _PENDING and not was_started and not (
                    st == "Canceled" and not c.get("values")):
                out.write("[%s] child %s started: %s\n" % (stamp, c["id"],
                                                           _short(c.get("params") or {})))
            if st in TERMINAL:
                score = c.get("score")
                line = "[%s] child %s %s: %s=%s" % (stamp, c["id"], st, metric,
                                                    "-" if score is None else score)
                if c.get("decision"):
                    line += " (stopped early: %s)" % c["decision"].get("message")
                out.write(line + "\n")
            seen[c["id"]] = st
        out.flush()


def get_hyperdrive_run(workspace, run_id, doc=None):
    """A HyperDriveRun for a sweep's id."""
    from runyard._notebook import Experiment
    ws = _as_workspace(workspace)
    doc = doc or ws._call("run.show", {"run": run_id})
    return HyperDriveRun(Experiment(ws, doc["experiment"]), run_id, _doc=doc)


# -- the widget -------------------------------------------------------------------------


def __getattr__(name):
    # RunDetails moved to runyard._widgets; kept importable from here.
    if name == "RunDetails":
        from runyard._widgets import RunDetails
        return RunDetails
    raise AttributeError(name)


__all__ = ["HyperDriveConfig", "HyperDriveRunConfig", "HyperDriveRun", "PrimaryMetricGoal",
           "HyperParameterSampling", "RandomParameterSampling", "GridParameterSampling",
           "BayesianParameterSampling", "EarlyTerminationPolicy", "BanditPolicy",
           "MedianStoppingPolicy", "TruncationSelectionPolicy", "NoTerminationPolicy",
           "choice", "randint", "uniform", "loguniform", "normal", "lognormal", "quniform",
           "qloguniform", "qnormal", "qlognormal", "UserErrorException"]
