"""Submitting runs from a notebook: environments, script run configurations,
experiments and the runs they return (docs/sdk.md).

    from azureml.core import Workspace, Environment, ScriptRunConfig, Experiment
    ws = Workspace.from_config()                         # the local runyardd
    env = Environment.from_conda_specification("sklearn-env", "conda_dependencies.yml")
    src = ScriptRunConfig(source_directory=".", script="train_iris.py",
                          arguments=["--kernel", "linear", "--penalty", 1.0], environment=env)
    run = Experiment(ws, "Tutorial-TrainIRIS").submit(src)
    run.wait_for_completion(show_output=True)

Everything goes through runyard's existing ops: env.create / env.show /
env.list, run.submit, run.watch, run.show, run.metrics, run.outputs,
artifact.read, run.logs, run.cancel, run.tag, compute.list.

Pure standard library.
"""

import json
import os
import shlex
import sys

from runyard._models import Model, RunyardError, Workspace, _as_workspace, _register_args
from runyard._run import (ComputeTargetException, DaemonError, UserErrorException, _Client,
                          _Experiment, collect_metrics, none_tags, tags_dict)

TERMINAL = ("Completed", "Failed", "Canceled")

# The run's output (stdout and stderr, as stored) under the name the cloud's
# current runtime gives it; get_file_names lists it, download_file fetches it.
STD_LOG = "user_logs/std_log.txt"


class ActivityFailedException(RunyardError):
    """A run that wait_for_completion waited for failed; .error is its
    details' "error" ({"error": {"code", "message", ...}})."""

    def __init__(self, message, error=None):
        super().__init__(message)
        self.error = error or {}


# -- compute targets ----------------------------------------------------------------


def _aliases_path():
    base = os.environ.get("XDG_CONFIG_HOME") or os.path.join(os.path.expanduser("~"), ".config")
    return os.path.join(base, "runyard", "sdk-compute-targets.json")


def _aliases_all():
    try:
        with open(_aliases_path(), encoding="utf-8") as f:
            doc = json.load(f)
        return doc if isinstance(doc, dict) else {}
    except (OSError, ValueError):
        return {}


def _aliases(ws):
    """The AmlCompute targets ComputeTarget.create made for this daemon:
    {name: {"type", "target", "config", "created_at"}}, kept by the SDK (per
    daemon socket) in $XDG_CONFIG_HOME/runyard/sdk-compute-targets.json."""
    got = _aliases_all().get(os.path.abspath(ws.socket_path), {})
    return got if isinstance(got, dict) else {}


def _aliases_save(ws, names):
    doc = _aliases_all()
    doc[os.path.abspath(ws.socket_path)] = names
    path = _aliases_path()
    os.makedirs(os.path.dirname(path), exist_ok=True)
    tmp = "%s.%d.tmp" % (path, os.getpid())
    with open(tmp, "w", encoding="utf-8") as f:
        json.dump(doc, f, indent=1, sort_keys=True)
    os.replace(tmp, path)


class ComputeTargetStatus(str):
    """What get_status() answers: the provisioning state as a string
    ("Succeeded"), with the cloud's serialize()."""

    def __new__(cls, doc):
        obj = super().__new__(cls, doc.get("provisioningState", "Succeeded"))
        obj._doc = doc
        for k, v in doc.items():
            setattr(obj, k[:1].lower() + k[1:], v)
        return obj

    def serialize(self):
        return json.loads(json.dumps(self._doc))


class AmlComputeProvisioningConfiguration:
    """AmlCompute.provisioning_configuration(...): kept as given; max_nodes
    becomes the target's shown capacity (the runs still share this machine's
    slots)."""

    def __init__(self, vm_size="", vm_priority="dedicated", min_nodes=0, max_nodes=4,
                 idle_seconds_before_scaledown=None, admin_username=None,
                 admin_user_password=None, admin_user_ssh_key=None, vnet_resourcegroup_name=None,
                 vnet_name=None, subnet_name=None, tags=None, description=None,
                 remote_login_port_public_access="NotSpecified", identity_type=None,
                 identity_id=None, location=None, enable_node_public_ip=True):
        for name, v in (("min_nodes", min_nodes), ("max_nodes", max_nodes)):
            if isinstance(v, bool) or not isinstance(v, int) or v < 0:
                raise ComputeTargetException("provisioning_configuration: %s must be an "
                                             "integer >= 0, not %r" % (name, v))
        if max_nodes < 1 or min_nodes > max_nodes:
            raise ComputeTargetException("provisioning_configuration: max_nodes must be >= 1 "
                                         "and >= min_nodes (got min_nodes=%d, max_nodes=%d)"
                                         % (min_nodes, max_nodes))
        self.vm_size = vm_size
        self.vm_priority = vm_priority
        self.min_nodes = min_nodes
        self.max_nodes = max_nodes
        self.idle_seconds_before_scaledown = idle_seconds_before_scaledown
        self.tags = dict(tags or {})
        self.description = description
        self.location = location

    def validate_configuration(self):
        pass

    def _doc(self):
        return {"vmSize": self.vm_size, "vmPriority": self.vm_priority,
                "minNodes": self.min_nodes, "maxNodes": self.max_nodes,
                "idleSecondsBeforeScaledown": self.idle_seconds_before_scaledown,
                "tags": self.tags, "description": self.description}


class ComputeTarget:
    """A compute target of the daemon: 'local', a cluster (Slurm) target,
    or an AmlCompute target made by ComputeTarget.create (a name for the
    local target). ComputeTarget(ws, name) of an unknown name raises
    ComputeTargetException, as the cloud does."""

    def __new__(cls, workspace=None, name=None, _doc=None):
        if cls is ComputeTarget and _doc is None and workspace is not None and name is not None:
            doc = _find_target(_as_workspace(workspace), name)
            if doc.get("type") == "AmlCompute":
                cls = AmlCompute
            obj = super().__new__(cls)
            obj._found = doc
            return obj
        return super().__new__(cls)

    def __init__(self, workspace, name, _doc=None):
        self.workspace = _as_workspace(workspace)
        if _doc is None:
            _doc = getattr(self, "_found", None) or _find_target(self.workspace, name)
        self._doc = _doc
        self.name = _doc["name"]
        self.type = _doc.get("type", "local")
        self.provisioning_state = "Succeeded"
        self.provisioning_errors = None
        self.location = "local"
        self.tags = dict((_doc.get("config") or {}).get("tags") or {})
        self.description = (_doc.get("config") or {}).get("description")
        self.cluster_location = "local"
        # the daemon's target its runs go to ('local' for an AmlCompute target)
        self._runyard_target = _doc.get("target") or self.name

    def __repr__(self):
        return "%s(workspace=%r, name=%r, type=%r, provisioning state=%s)" % (
            type(self).__name__, self.workspace.name, self.name, self.type,
            self.provisioning_state)

    @staticmethod
    def create(workspace, name, provisioning_configuration):
        """A target of this daemon named name. A target the daemon has by
        that name (a Slurm target made with 'runyard compute create', or
        'local') is returned as it is; otherwise an AmlCompute target that
        runs on the local target, kept by the SDK, is made (again for a
        name it already has: its configuration is replaced)."""
        ws = _as_workspace(workspace)
        if not isinstance(name, str) or not name or len(name) > 255:
            raise ComputeTargetException("ComputeTarget.create: a compute target needs a name "
                                         "of 1 to 255 characters, not %r" % (name,))
        for t in ws._call("compute.list").get("targets", []):
            if t["name"] == name:
                return ComputeTarget(ws, name, _doc=t)
        if name == "local":
            return ComputeTarget(ws, "local", _doc={"name": "local", "type": "local"})
        cfg = provisioning_configuration
        conf = cfg._doc() if hasattr(cfg, "_doc") else {}
        import datetime
        doc = {"name": name, "type": "AmlCompute", "target": "local", "config": conf,
               "created_at": datetime.datetime.now(datetime.timezone.utc).isoformat()}
        names = _aliases(ws)
        names[name] = {k: v for k, v in doc.items() if k != "name"}
        _aliases_save(ws, names)
        return AmlCompute(ws, name, _doc=doc)

    @staticmethod
    def list(workspace):
        return list(compute_targets(_as_workspace(workspace)).values())

    def wait_for_completion(self, show_output=False, min_node_count=None,
                            timeout_in_minutes=20, is_delete_operation=False):
        """Nothing to wait for: a target of this daemon is ready when made."""
        if show_output:
            print("Succeeded")
            if self.type == "AmlCompute":
                print("AmlCompute wait for completion finished\n")
                print("Minimum number of nodes requested have been provisioned")
            else:
                print('Provisioning operation finished, operation "Succeeded"')

    def get_status(self):
        """The provisioning state ("Succeeded") with serialize()."""
        conf = self._doc.get("config") or {}
        doc = {"provisioningState": self.provisioning_state, "allocationState": "Steady",
               "creationTime": self._doc.get("created_at"), "errors": None,
               "currentNodeCount": 0, "targetNodeCount": 0,
               "nodeStateCounts": {"idleNodeCount": 0, "leavingNodeCount": 0,
                                   "preemptedNodeCount": 0, "preparingNodeCount": 0,
                                   "runningNodeCount": 0, "unusableNodeCount": 0},
               "runyard": {"type": self.type, "target": self._runyard_target}}
        if self.type == "AmlCompute":
            doc["vmSize"] = conf.get("vmSize")
            doc["vmPriority"] = conf.get("vmPriority")
            doc["scaleSettings"] = {"minNodeCount": conf.get("minNodes", 0),
                                    "maxNodeCount": conf.get("maxNodes", 1),
                                    "nodeIdleTimeBeforeScaleDown":
                                        conf.get("idleSecondsBeforeScaledown")}
        try:
            st = self.workspace._call("daemon.status")
            doc["runyard"]["max_runs"] = st.get("max_runs")
            doc["runyard"]["resources"] = st.get("resources")
        except DaemonError:
            pass
        return ComputeTargetStatus(doc)

    def refresh_state(self):
        pass

    def serialize(self):
        return dict(self._doc)

    def delete(self):
        """Remove the target: an AmlCompute one from the SDK's list, a
        cluster target from the daemon (compute.delete); 'local' cannot be."""
        if self.type == "AmlCompute":
            names = _aliases(self.workspace)
            if names.pop(self.name, None) is None:
                raise ComputeTargetException("compute target %r is not there any more"
                                             % self.name)
            _aliases_save(self.workspace, names)
        elif self.name == "local":
            raise ComputeTargetException("the local compute target is runyardd's own and "
                                         "cannot be deleted")
        else:
            try:
                self.workspace._call("compute.delete", {"name": self.name})
            except DaemonError as e:
                raise ComputeTargetException("deleting compute target %r: %s"
                                             % (self.name, e)) from None
        self.provisioning_state = "Deleted"

    detach = delete


class AmlCompute(ComputeTarget):
    """An AmlCompute target: ComputeTarget.create(ws, name,
    AmlCompute.provisioning_configuration(...)). Its runs go to the local
    target (one machine: min_nodes and max_nodes are shown, not used)."""

    def __init__(self, workspace, name, _doc=None):
        super().__init__(workspace, name, _doc=_doc)

    @staticmethod
    def provisioning_configuration(vm_size="", vm_priority="dedicated", min_nodes=0,
                                   max_nodes=4, idle_seconds_before_scaledown=None, **kwargs):
        return AmlComputeProvisioningConfiguration(
            vm_size=vm_size, vm_priority=vm_priority, min_nodes=min_nodes, max_nodes=max_nodes,
            idle_seconds_before_scaledown=idle_seconds_before_scaledown, **kwargs)

    @staticmethod
    def supported_vmsizes(workspace, location=None):
        """The one "size" this machine has."""
        ws = _as_workspace(workspace)
        res = ws._call("daemon.status").get("resources") or {}
        cpus = (res.get("cpus") or {}).get("total")
        mem = (res.get("memory") or {}).get("total")
        return [{"name": "local", "vCPUs": cpus, "gpus": len(res.get("gpus") or []),
                 "memoryGB": round(mem / 2 ** 30, 1) if mem else None}]

    def get(self):
        return self.serialize()


def _find_target(ws, name):
    """The target document of name: the daemon's, else an AmlCompute alias;
    ComputeTargetException otherwise."""
    for t in ws._call("compute.list").get("targets", []):
        if t["name"] == name:
            return t
    if name == "local":
        return {"name": "local", "type": "local"}
    alias = _aliases(ws).get(name)
    if isinstance(alias, dict):
        return dict(alias, name=name)
    known = sorted(set(t["name"] for t in ws._call("compute.list").get("targets", []))
                   | {"local"} | set(_aliases(ws)))
    raise ComputeTargetException(
        "ComputeTargetNotFound: no compute target named %r on this runyardd (it has: %s). "
        "Create one with ComputeTarget.create(ws, %r, AmlCompute.provisioning_configuration("
        "...)) (it runs on the local machine), or a cluster target with 'runyard compute "
        "create'" % (name, ", ".join(known), name))


class _Targets(dict):
    """ws.compute_targets: an unknown name is a KeyError that lists the known ones."""

    def __missing__(self, name):
        raise KeyError("no compute target named %r on this runyardd; it has: %s. Create a "
                       "cluster target with 'runyard compute create', or use 'local'"
                       % (name, ", ".join(sorted(self)) or "none"))


def compute_targets(ws):
    out = _Targets()
    for t in ws._call("compute.list").get("targets", []):
        out[t["name"]] = ComputeTarget(ws, t["name"], _doc=t)
    if "local" not in out:
        out["local"] = ComputeTarget(ws, "local", _doc={"name": "local", "type": "local"})
    for name, alias in sorted(_aliases(ws).items()):
        if name not in out and isinstance(alias, dict):
            out[name] = AmlCompute(ws, name, _doc=dict(alias, name=name))
    return out


def _target_name(target, ws=None):
    """The daemon's target for a compute_target: 'local', a target's name,
    or a ComputeTarget (an AmlCompute target is 'local')."""
    if target is None:
        return None
    if isinstance(target, str):
        if ws is not None and target != "local":
            alias = _aliases(ws).get(target)
            if isinstance(alias, dict) and not any(
                    t["name"] == target for t in ws._call("compute.list").get("targets", [])):
                return alias.get("target") or "local"
        return target
    name = getattr(target, "_runyard_target", None) or getattr(target, "name", None)
    if isinstance(name, str):
        return name
    raise TypeError("compute_target must be 'local', a target's name or a ComputeTarget, "
                    "not %s" % type(target).__name__)


# -- environments ------------------------------------------------------------------


# Curated environments of the cloud and the built-in that stands in for them.
CURATED = {
    "azureml-tutorial": "sklearn",
    "azureml-minimal": "system",
}


def curated_builtin(name):
    """The built-in environment a curated cloud name maps to, or None:
    AzureML-Tutorial and every scikit-learn curated name (AzureML-sklearn-*,
    AzureML-Scikit-learn-*) are 'sklearn'; AzureML-Minimal is 'system'."""
    low = name.lower()
    if low in CURATED:
        return CURATED[low]
    if low.startswith("azureml-") and ("sklearn" in low or "scikit" in low):
        return "sklearn"
    return None


class PythonSection:
    """env.python: user_managed_dependencies (True: use interpreter_path as is,
    install nothing), interpreter_path, and conda_dependencies (a
    CondaDependencies the environment is made from; for an environment from
    a conda file, that file's, read when first asked for)."""

    def __init__(self, owner=None):
        self.user_managed_dependencies = False
        self.interpreter_path = None
        self.conda_dependencies_file = None
        self.base_conda_environment = None
        self._owner = owner
        self._cd = None
        self._cd_text = None   # what it serialised to when read from the file

    @property
    def conda_dependencies(self):
        if self._cd is None:
            from runyard._conda import CondaDependencies, _parse_yaml
            spec = self._owner._spec if self._owner is not None else {}
            if spec.get("conda_yaml"):
                self._cd = CondaDependencies(_underlying_structure=_parse_yaml(
                    spec["conda_yaml"], spec.get("conda_file") or "the conda file"))
                self._cd_text = self._cd.serialize_to_string()
            elif spec.get("requirements") is not None:
                self._cd = CondaDependencies()
                for line in spec["requirements"].splitlines():
                    line = line.split("#", 1)[0].strip()
                    if line and not line.startswith("-"):
                        self._cd.add_pip_package(line)
                self._cd_text = self._cd.serialize_to_string()
            else:
                self._cd = CondaDependencies()
                self._cd_text = self._cd.serialize_to_string()
        return self._cd

    @conda_dependencies.setter
    def conda_dependencies(self, cd):
        if cd is not None and not hasattr(cd, "serialize_to_string"):
            raise TypeError("python.conda_dependencies must be a CondaDependencies, not %s"
                            % type(cd).__name__)
        self._cd = cd
        self._cd_text = None

    def _changed_spec(self):
        """The conda YAML to make the environment from when conda_dependencies
        was set or changed; None when it was not."""
        if self._cd is None:
            return None
        text = self._cd.serialize_to_string()
        return None if text == self._cd_text else text


_warned = {}


class DockerSection:
    """env.docker: accepted and ignored (runyard runs no containers)."""

    def __init__(self):
        self.enabled = False
        self.base_image = None
        self.base_dockerfile = None
        self.shm_size = None
        self.arguments = []


class Environment:
    """A named, versioned environment of the daemon (docs/environments.md).

    from_conda_specification and from_pip_requirements keep the file's text;
    the environment is created in the daemon by register(workspace), or at
    the first submit that uses it. Python packages of a conda specification
    or requirements file are installed into a venv that sees the system's
    site-packages (runyard_system_site_packages, default True), so what the
    machine has already installed satisfies them, offline too."""

    def __init__(self, name, **kwargs):
        if not isinstance(name, str) or not name:
            raise ValueError("an Environment needs a name")
        self.name = name
        self.version = None
        self.python = PythonSection(self)
        self.docker = DockerSection()
        self.environment_variables = {}
        self.inferencing_stack_version = None
        self.runyard_system_site_packages = True
        self._spec = {}           # the file's text for env.create
        self._ref = None          # "NAME:VERSION" in the daemon
        self._registered = None   # what _ref was made from
        self._builtin = None

    def __repr__(self):
        return "Environment(name=%r, version=%r)" % (self.name, self.version)

    # -- making one --------------------------------------------------------------------

    @staticmethod
    def _read(file_path, what):
        try:
            with open(file_path, encoding="utf-8") as f:
                return f.read()
        except OSError as e:
            raise RunyardError("%s: cannot read %s: %s" % (what, file_path, e.strerror)) from None

    @staticmethod
    def from_conda_specification(name, file_path):
        """An environment from a conda specification YAML (read now)."""
        env = Environment(name)
        env._spec = {"conda_yaml": Environment._read(file_path, "from_conda_specification"),
                     "conda_file": os.path.basename(file_path)}
        env.python.conda_dependencies_file = file_path
        return env

    @staticmethod
    def from_pip_requirements(name, file_path, pip_version=None):
        """An environment from a pip requirements file (read now)."""
        env = Environment(name)
        env._spec = {"requirements": Environment._read(file_path, "from_pip_requirements")}
        return env

    @staticmethod
    def _from_json(name, doc, builtin=None):
        env = Environment(name)
        d = doc.get("definition") or {}
        env.version = str(doc.get("version"))
        env.python.user_managed_dependencies = d.get("kind") == "interpreter"
        env.python.interpreter_path = d.get("python")
        env.environment_variables = dict(d.get("vars") or {})
        env.runyard_system_site_packages = bool(d.get("system_site_packages"))
        env._ref = "%s:%s" % (doc["name"], doc["version"])
        env._builtin = builtin or (doc["name"] if doc.get("builtin") else None)
        env._registered = env._state()
        env._doc = doc
        return env

    @staticmethod
    def get(workspace, name, version=None, label=None):
        """An environment of the daemon, by name (the latest version, or
        version). A cloud curated name is the built-in that stands in for
        it: AzureML-Tutorial is 'sklearn'."""
        ws = _as_workspace(workspace)
        ref = name if version is None else "%s:%s" % (name, version)
        try:
            return Environment._from_json(name, ws._call("env.show", {"environment": ref}))
        except DaemonError as e:
            if e.code not in ("NotFound", "InvalidArgument"):
                raise
            builtin = curated_builtin(name)
            if builtin is None:
                known = sorted(Environment.list(ws))
                raise UserErrorException(
                    "no environment named %r%s in this runyardd; it has: %s. Make one with "
                    "Environment.from_conda_specification(...) or "
                    "Environment.from_pip_requirements(...) and register it (or 'runyard env "
                    "create')" % (name, "" if version is None else " (version %s)" % version,
                                  ", ".join(known))) from None
        return Environment._from_json(name, ws._call("env.show", {"environment": builtin}),
                                      builtin=builtin)

    @staticmethod
    def list(workspace):
        """{name: the latest version's Environment}."""
        ws = _as_workspace(workspace)
        out = {}
        for doc in ws._call("env.list")["environments"]:
            cur = out.get(doc["name"])
            if cur is None or int(doc["version"]) >= int(cur._doc["version"]):
                out[doc["name"]] = Environment._from_json(doc["name"], doc)
        return out

    def clone(self, new_name):
        env = Environment(new_name)
        env.python.user_managed_dependencies = self.python.user_managed_dependencies
        env.python.interpreter_path = self.python.interpreter_path
        env.environment_variables = dict(self.environment_variables)
        env.runyard_system_site_packages = self.runyard_system_site_packages
        env._spec = dict(self._spec)
        if not env._spec and not env.python.user_managed_dependencies and self._builtin:
            # a built-in: the same interpreter, used as is
            env.python.user_managed_dependencies = True
        return env

    # -- registering -------------------------------------------------------------------

    def _state(self):
        return (bool(self.python.user_managed_dependencies), self.python.interpreter_path,
                tuple(sorted((str(k), str(v)) for k, v in self.environment_variables.items())),
                bool(self.runyard_system_site_packages), self.python._changed_spec())

    def _interpreter(self):
        path = self.python.interpreter_path
        if not path or path == "python":
            return sys.executable
        if os.path.isabs(path):
            return path
        import shutil
        found = shutil.which(path)
        if not found:
            raise RunyardError("environment %s: interpreter %r is not on PATH; give "
                               "python.interpreter_path as an absolute path" % (self.name, path))
        return os.path.abspath(found)

    def _create_args(self):
        args = {"name": self.name,
                "vars": {str(k): str(v) for k, v in self.environment_variables.items()}}
        if self.python.user_managed_dependencies:
            args["interpreter"] = self._interpreter()
            return args
        conda = self.python._changed_spec()
        if conda is not None:
            args.update({"conda_yaml": conda, "conda_file": "conda_dependencies.yml"})
        else:
            args.update(self._spec or {"requirements": ""})
        args["system_site_packages"] = bool(self.runyard_system_site_packages)
        path = self.python.interpreter_path
        if path and path != "python":
            args["python"] = self._interpreter()
        return args

    def _docker_warning(self):
        d = self.docker
        used = [n for n in ("base_image", "base_dockerfile", "shm_size") if getattr(d, n, None)]
        if (d.enabled or used) and not _warned.get("docker"):
            _warned["docker"] = True
            print("runyard: environment %s: env.docker (%s) is not used: runs use this "
                  "machine's interpreters, not containers" % (
                      self.name, ", ".join(["enabled"] * bool(d.enabled) + used)),
                  file=sys.stderr)

    def register(self, workspace):
        """Create this definition in the daemon (a new version when it
        changed; the same version when it did not) and return self."""
        ws = _as_workspace(workspace)
        self._docker_warning()
        if self._builtin:
            if self._registered == self._state():
                return self
            raise RunyardError("environment %s is runyard's built-in %r and cannot be changed; "
                               "use env.clone('a-new-name') and change the clone"
                               % (self.name, self._builtin))
        doc = ws._call("env.create", self._create_args())
        self.version = str(doc["version"])
        self._ref = "%s:%s" % (doc["name"], doc["version"])
        self._registered = self._state()
        self._doc = doc
        return self

    def _submit_ref(self, ws):
        """NAME:VERSION for run.submit, registering what has not been."""
        self._docker_warning()
        if self._ref is None or self._registered != self._state():
            # a built-in's variables travel with the submit; nothing else may change
            if not (self._builtin and self._registered[:2] == self._state()[:2]
                    and self._registered[3:] == self._state()[3:]):
                self.register(ws)
        return self._ref

    def get_image_details(self, workspace):
        return {}

    @staticmethod
    def from_docker_image(name, image, container_registry=None, conda_specification=None,
                          pip_requirements=None):
        raise NotImplementedError("Environment.from_docker_image is not supported by runyard "
                                  "(it runs no containers); use from_conda_specification or a "
                                  "user-managed interpreter")

    @staticmethod
    def from_dockerfile(name, dockerfile, conda_specification=None, pip_requirements=None):
        raise NotImplementedError("Environment.from_dockerfile is not supported by runyard "
                                  "(it runs no containers)")

    @staticmethod
    def from_existing_conda_environment(name, conda_environment_name):
        raise NotImplementedError("Environment.from_existing_conda_environment is not "
                                  "supported by runyard; give the environment's python as "
                                  "python.interpreter_path with user_managed_dependencies")

    def build(self, workspace, image_build_compute=None):
        raise NotImplementedError("Environment.build (an image) is not supported by runyard: "
                                  "the environment is built at register or at the first run "
                                  "that uses it")

    def build_local(self, workspace, platform=None, **kwargs):
        raise NotImplementedError("Environment.build_local is not supported by runyard: the "
                                  "environment is built at the first run that uses it")


# -- run configurations -------------------------------------------------------------


class RunConfiguration:
    """src.run_config: target, environment, max_run_duration_seconds,
    environment_variables (added to the run's), node_count."""

    def __init__(self, script=None, arguments=None, framework=None, communicator=None,
                 conda_dependencies=None, _history_enabled=None, _path=None, _name=None,
                 command=None):
        self.script = script
        self.arguments = list(arguments or [])
        self.command = command
        self.target = "local"
        # As the cloud's: an environment to change in place
        # (run_config.environment.python.conda_dependencies = cd); left
        # untouched, the run uses the daemon's default interpreter.
        self.environment = Environment("runyard-runconfig")
        if conda_dependencies is not None:
            self.environment.python.conda_dependencies = conda_dependencies
        self.environment._rc_default = Environment("runyard-runconfig")._state()
        self.max_run_duration_seconds = None
        self.environment_variables = {}
        self.node_count = 1
        self.framework = framework or "Python"
        self.history = None
        self.docker = None


class ScriptRunConfig:
    """What to run: source_directory (snapshotted at submit), script and
    arguments (or command), environment, compute_target and
    max_run_duration_seconds."""

    MAX_DURATION_SECONDS_DEFAULT = 2592000

    def __init__(self, source_directory, script=None, arguments=None, run_config=None,
                 _telemetry_values=None, compute_target=None, environment=None,
                 distributed_job_config=None, resume_from=None,
                 max_run_duration_seconds=MAX_DURATION_SECONDS_DEFAULT, command=None,
                 docker_runtime_config=None):
        if script is not None and command is not None:
            raise ValueError("ScriptRunConfig: give script (and arguments) or command, not both")
        self.source_directory = source_directory if source_directory is not None else "."
        self.run_config = run_config or RunConfiguration()
        rc = self.run_config
        if script is not None:
            rc.script = script
        if arguments is not None:
            rc.arguments = list(arguments)
        if command is not None:
            rc.command = command
        if compute_target is not None:
            rc.target = compute_target
        if environment is not None:
            rc.environment = environment
        if max_run_duration_seconds is not None:
            rc.max_run_duration_seconds = max_run_duration_seconds
        self.distributed_job_config = distributed_job_config

    # The cloud original's attributes are the run configuration's.
    script = property(lambda self: self.run_config.script,
                      lambda self, v: setattr(self.run_config, "script", v))
    arguments = property(lambda self: self.run_config.arguments,
                         lambda self, v: setattr(self.run_config, "arguments", list(v)))
    command = property(lambda self: self.run_config.command,
                       lambda self, v: setattr(self.run_config, "command", v))

    def __repr__(self):
        return "ScriptRunConfig(source_directory=%r, script=%r, arguments=%r)" % (
            self.source_directory, self.script, self.arguments)

    def _command(self, inputs):
        rc = self.run_config
        if rc.command:
            cmd = shlex.split(rc.command) if isinstance(rc.command, str) else list(rc.command)
            cmd = [_argument(a, inputs) for a in cmd]
            # "python train.py ..." runs with the environment's interpreter
            if (len(cmd) > 1 and os.path.basename(cmd[0]) in ("python", "python3")
                    and cmd[1].endswith(".py")):
                cmd = cmd[1:]
            if not cmd:
                raise ValueError("ScriptRunConfig: command is empty")
            return cmd
        if not rc.script:
            raise ValueError("ScriptRunConfig: give script (or command)")
        return [rc.script] + [_argument(a, inputs) for a in rc.arguments]

    def _submit_args(self, ws, experiment):
        """The run.submit request for this configuration."""
        rc = self.run_config
        inputs = []
        args = {"command": self._command(inputs),
                "source": os.path.abspath(os.fspath(self.source_directory)),
                "experiment": experiment}
        env = rc.environment
        if (isinstance(env, Environment) and getattr(env, "_rc_default", None) is not None
                and env._rc_default == env._state() and not env._spec):
            env = None     # the run configuration's own, untouched
        variables = {}
        if env is not None:
            if isinstance(env, str):
                args["environment"] = env
            else:
                args["environment"] = env._submit_ref(ws)
                variables.update(env.environment_variables)
        variables.update(rc.environment_variables or {})
        for spec in inputs:
            tab = spec.pop("_tabular", None)
            if tab is not None:     # run.input_datasets[name] is a TabularDataset
                variables["RUNYARD_TABULAR_" + spec["name"]] = json.dumps(tab)
        if variables:
            args["env"] = {str(k): str(v) for k, v in variables.items()}
        timeout = rc.max_run_duration_seconds
        if timeout is not None and timeout != self.MAX_DURATION_SECONDS_DEFAULT:
            args["timeout"] = timeout
        target = _target_name(rc.target, ws)
        if target and target != "local":
            args["target"] = target
        # The cloud's one resource field of a run: its node count (also a
        # distributed job's), which a cluster target takes as Slurm's.
        nodes = rc.node_count or 1
        dj = self.distributed_job_config
        if dj is not None and getattr(dj, "node_count", None):
            nodes = max(int(nodes), int(dj.node_count))
        if int(nodes) != 1:
            if not target or target == "local":
                raise ValueError("ScriptRunConfig: node_count %d needs a cluster compute "
                                 "target; a local run has this one machine" % int(nodes))
            args["nodes"] = int(nodes)
        if inputs:
            args["inputs"] = inputs
        return args


def _argument(a, inputs):
    """One command-line argument: numbers as their text ('1.0'), and an input
    (an object with _runyard_input(), a dataset's as_mount() for example) as
    the path the script sees, inputs/<name>, recorded in inputs."""
    hook = getattr(a, "_runyard_input", None)
    if hook is not None and callable(hook):
        spec = dict(hook())
        inputs.append(spec)
        return "inputs/%s" % spec["name"]
    if isinstance(a, bytes):
        return a.decode()
    return a if isinstance(a, str) else str(a)


# -- experiments and runs -------------------------------------------------------------


class Experiment:
    """A name that groups runs; submit(config) starts one."""

    def __init__(self, workspace, name, _skip_name_validation=False, _id=None, **kwargs):
        self.workspace = _as_workspace(workspace)
        self.name = name

    def __repr__(self):
        return "Experiment(name=%r, workspace=%r)" % (self.name, self.workspace.name)

    def start_logging(self, *args, **kwargs):
        """An interactive run of this notebook (its process is this one):
        log to it, then complete() it (or use it in a with block).
        snapshot_directory (default: none) is snapshotted as a submitted
        run's source is; outputs (a directory) is uploaded as outputs/ when
        the run completes. The daemon fails the run HeartbeatLost when this
        process dies before it ends."""
        from runyard._interactive import start
        names = ("outputs", "snapshot_directory")
        for n, v in zip(names, args):
            kwargs.setdefault(n, v)
        return start(self.workspace, self.name,
                     snapshot_directory=kwargs.get("snapshot_directory"),
                     outputs=kwargs.get("outputs"), display_name=kwargs.get("display_name"),
                     tags=kwargs.get("tags"))

    def submit(self, config, tags=None, _parent=None, **kwargs):
        """Snapshot config's source directory and queue the run; returns the
        Run. A HyperDriveConfig starts a sweep (sweep.submit) and returns its
        HyperDriveRun."""
        # imported here: _hyperdrive builds on this module
        from runyard._hyperdrive import HyperDriveConfig, HyperDriveRun
        ws = self.workspace
        if isinstance(config, HyperDriveConfig):
            try:
                res = ws._call("sweep.submit", config._submit_args(ws, self.name), timeout=None)
            except DaemonError as e:
                if e.code != "UnknownOp":
                    raise
                raise RunyardError("the runyardd at %s has no sweeps (it does not know "
                                   "sweep.submit): HyperDrive needs a newer runyardd"
                                   % ws.socket_path) from None
            run = HyperDriveRun(self, res["id"], hyperdrive_config=config)
            run._submit = res
            if tags:
                run.set_tags(tags)
            return run
        if not isinstance(config, ScriptRunConfig):
            raise TypeError("Experiment.submit takes a ScriptRunConfig or a HyperDriveConfig, "
                            "not %s" % type(config).__name__)
        args = config._submit_args(ws, self.name)
        if _parent is not None:
            args["parent"] = _parent
        res = ws._call("run.submit", args, timeout=None)
        run = RunHandle(ws, res["id"])
        run._submit = res
        if tags:
            run.set_tags(tags)
        return run

    def get_runs(self, type=None, tags=None, properties=None, include_children=False):
        docs = self.workspace._call("run.list", {"experiment": self.name,
                                                 "limit": 100000})["runs"]
        for d in docs:
            # the cloud lists a sweep's children only when asked to
            if d.get("parent") and not include_children:
                continue
            d = _full(self.workspace, d, tags, properties)
            if _matches(d, type, tags, properties):
                yield _handle(self.workspace, d)

    @staticmethod
    def list(workspace, experiment_name=None, **kwargs):
        ws = _as_workspace(workspace)
        return [Experiment(ws, e["name"]) for e in ws._call("experiment.list")["experiments"]
                if experiment_name in (None, e["name"])]


def _error_summary(ws, run_id, error):
    """The run's error in the cloud's shape, with the last line of a
    traceback the script printed when it failed with one."""
    err = {"code": error.get("code"), "message": error.get("message"),
           "stage": error.get("stage")}
    if error.get("code") == "UserError":
        try:
            page = ws._call("run.logs", {"run": run_id, "stream": "stderr"})
            lines, more, after = page["lines"], page.get("more"), page.get("next_seq")
            while more:
                page = ws._call("run.logs", {"run": run_id, "stream": "stderr",
                                             "after_seq": after})
                lines = lines[-50:] + page["lines"]
                more, after = page.get("more"), page.get("next_seq")
        except DaemonError:
            lines = []
        texts = [l["text"] for l in lines]
        last = next((t for t in reversed(texts) if t.strip()), None)
        if last is not None:
            tb = [t for t in texts if t.startswith("Traceback")]
            if tb:
                err["message"] = "User program failed with %s (%s)" % (last.strip(),
                                                                       error.get("message"))
            else:
                err["message"] = "%s; the last line on stderr: %s" % (error.get("message"),
                                                                      last.strip())
            err["details"] = texts[-20:]
    return {"error": err}


class RunHandle:
    """A run seen from outside it (a notebook): what Experiment.submit,
    Run.get(workspace, id) and Workspace.get_run(id) return."""

    def __init__(self, workspace, run_id, _doc=None):
        self.workspace = _as_workspace(workspace)
        if _doc is None:
            try:
                _doc = self.workspace._call("run.show", {"run": run_id})
            except DaemonError as e:
                if e.code == "NotFound":
                    raise UserErrorException("run not found: %s" % run_id) from None
                raise
        self._doc = _doc
        self._submit = None
        self.id = _doc["id"]
        self.number = _doc["seq"]
        self.experiment = _Experiment(_doc["experiment"])
        self.experiment.workspace = self.workspace

    def __repr__(self):
        return "Run(Experiment: %s,\nId: %s,\nType: runyard,\nStatus: %s)" % (
            self.experiment.name, self.id, self._doc.get("status"))

    @property
    def display_name(self):
        return self.id

    name = display_name

    @property
    def status(self):
        return self._doc.get("status")

    @property
    def parent(self):
        """A sweep's child: the sweep (a HyperDriveRun); otherwise None."""
        parent = self._doc.get("parent")
        return get_run(self.workspace, parent) if parent else None

    def _show(self):
        self._doc = self.workspace._call("run.show", {"run": self.id})
        return self._doc

    def get_status(self):
        return self._show()["status"]

    def get_portal_url(self):
        """The run's page in the web view when the daemon serves one (runyard
        ui), else the command that shows the run."""
        try:
            url = self.workspace._call("daemon.status").get("web_url")
        except DaemonError:
            url = None
        if url:
            return "%s#/run/%s" % (url.rstrip("/") + "/", self.id)
        return "runyard show %d" % self.number

    def restore_snapshot(self, snapshot_id=None, path=None):
        """The run's snapshot as a ZIP file at path (a file, or a directory
        for SNAPSHOT.zip; default: here); returns its path."""
        import base64
        doc = self._show()
        if snapshot_id not in (None, doc.get("snapshot")):
            raise UserErrorException("run %s has snapshot %s, not %s" % (
                self.id, doc.get("snapshot"), snapshot_id))
        name = "%s.zip" % doc.get("snapshot")
        dest = path or name
        if os.path.isdir(dest):
            dest = os.path.join(dest, name)
        exp = self.workspace._call("snapshot.export", {"run": self.id, "format": "zip"},
                                   timeout=None)
        tmp = dest + ".part"
        try:
            with open(tmp, "wb") as out:
                offset = 0
                while True:
                    page = self.workspace._call("snapshot.export_read", {
                        "export": exp["export"], "offset": offset}, timeout=None)
                    data = base64.b64decode(page["data"])
                    out.write(data)
                    offset += len(data)
                    if page.get("eof") or not data:
                        break
            os.replace(tmp, dest)
        finally:
            if os.path.exists(tmp):
                os.unlink(tmp)
        return os.path.abspath(dest)

    # -- details ---------------------------------------------------------------------

    def get_details(self):
        """The run's details in the cloud's shape: runId, target, status,
        startTimeUtc, endTimeUtc, properties, inputDatasets, runDefinition,
        logFiles, and error when it failed."""
        doc = self._show()
        return self._details(doc)

    def _details(self, doc):
        props = dict(doc.get("properties") or {})
        props.setdefault("ContentSnapshotId", doc.get("snapshot"))
        cmd = list(doc.get("command") or [])
        script = cmd[0] if cmd and cmd[0].endswith(".py") else None
        env_ref = props.get("environment")
        env = None
        if env_ref:
            name, _, version = env_ref.rpartition(":")
            env = {"name": name or env_ref, "version": version or None}
        details = {
            "runId": doc["id"],
            "runNumber": doc["seq"],
            "target": doc.get("target") or "local",
            "status": doc["status"],
            "startTimeUtc": doc.get("started_at"),
            "endTimeUtc": doc.get("ended_at"),
            "properties": props,
            "tags": none_tags(doc.get("tags")),
            "inputDatasets": [],
            "outputDatasets": [],
            "runDefinition": {
                "script": script,
                "command": "" if script else " ".join(shlex.quote(c) for c in cmd),
                "arguments": cmd[1:] if script else [],
                "target": doc.get("target") or "local",
                "framework": "Python",
                "environment": env,
                "python": doc.get("python"),
                "maxRunDurationSeconds": doc.get("timeout"),
                "environmentVariables": dict(doc.get("env") or {}),
                "sourceDirectory": doc.get("source"),
            },
            "logFiles": self._log_files(doc),
            "submittedBy": _user(),
        }
        if doc.get("error"):
            details["error"] = _error_summary(self.workspace, doc["id"], doc["error"])
        if doc.get("warnings"):
            details["warnings"] = [{"message": w.get("message")} for w in doc["warnings"]]
        return details

    def _log_files(self, doc):
        files = {STD_LOG: STD_LOG}
        if doc["status"] in TERMINAL:
            try:
                for a in self.workspace._call("run.outputs", {"run": doc["id"]})["artifacts"]:
                    if a["path"].startswith("logs/"):
                        files[a["path"]] = a["path"]
            except DaemonError:
                pass
        return files

    def get_details_with_logs(self):
        details = self.get_details()
        details["logFiles"] = {STD_LOG: self._std_log()}
        return details

    def get_metrics(self, name=None, recursive=False, run_type=None, populate=False):
        ws = self.workspace
        return collect_metrics(lambda **a: ws._call("run.metrics", dict(a, run=self.id)), name)

    def get_tags(self):
        return none_tags(self._show().get("tags"))

    def get_properties(self):
        return dict(self._show().get("properties") or {})

    def tag(self, key, value=None):
        self.set_tags({key: value})

    def set_tags(self, tags):
        self.workspace._call("run.tag", {"run": self.id, "tags": {
            str(k): "" if v is None else str(v) for k, v in tags_dict(tags).items()}})

    def remove_tags(self, tags):
        if isinstance(tags, str):
            tags = [tags]
        self.workspace._call("run.tag", {"run": self.id, "tags": {k: None for k in tags}})

    def add_properties(self, properties):
        self.workspace._call("run.tag", {"run": self.id, "properties": {
            str(k): str(v) for k, v in properties.items()}})

    def get_environment(self):
        """The Environment the run used (its NAME:VERSION); None when it ran
        with the daemon's default interpreter."""
        ref = (self._show().get("properties") or {}).get("environment")
        if not ref:
            return None
        name, _, version = ref.rpartition(":")
        return Environment.get(self.workspace, name or ref, version or None)

    # -- children and ending (interactive runs) -----------------------------------------

    def get_children(self, recursive=False, tags=None, properties=None, type=None,
                     status=None, _rehydrate_runs=True):
        """The run's children (run.list with parent), newest first; with
        recursive, their children too."""
        docs = self.workspace._call("run.list", {"parent": self.id, "limit": 100000})["runs"]
        out = []
        for d in docs:
            d = _full(self.workspace, d, tags, properties)
            kid = _handle(self.workspace, d)
            if _matches(d, type, tags, properties) and (status is None
                                                        or d.get("status") == status):
                out.append(kid)
            if recursive:
                out.extend(kid.get_children(True, tags, properties, type, status))
        return out

    def submit_child(self, config, tags=None, **kwargs):
        """Submit config as a child of this run."""
        return Experiment(self.workspace, self.experiment.name).submit(config, tags=tags,
                                                                       _parent=self.id)

    def child_run(self, name=None, run_id=None, outputs=None):
        """An interactive child run of this run, run by this process."""
        from runyard._interactive import child_run
        return child_run(self.workspace, self.experiment.name, self.id, name, outputs)

    def create_children(self, count=None, tag_key=None, tag_values=None):
        from runyard._interactive import create_children
        return create_children(self, count, tag_key, tag_values)

    def _end(self, status, code=None, message=None):
        args = {"run": self.id, "status": status}
        if code:
            args["error_code"] = str(code)
        if message:
            args["error_message"] = str(message)
        try:
            self.workspace._call("run.finish", args)
        except DaemonError as e:
            if e.code != "Conflict":
                raise
            if self._doc.get("kind") != "interactive" and self.get_status() not in TERMINAL:
                raise UserErrorException(
                    "run %s is a submitted run: it ends when its process does (cancel() "
                    "stops it)" % self.id) from None
        self._show()

    def fail(self, error_details=None, error_code=None, _set_status=True):
        """Mark an interactive run Failed (from any process); a submitted
        run ends with its process (UserErrorException: cancel() it)."""
        self._end("Failed", error_code, error_details)

    def complete(self, _set_status=True):
        self._end("Completed")

    def cancel(self):
        """Cancel the run (a queued run at once; a running one is stopped)."""
        try:
            self.workspace._call("run.cancel", {"run": self.id})
        except DaemonError as e:
            if e.code != "Conflict":     # already ended: nothing to cancel
                raise

    # -- files -----------------------------------------------------------------------

    def get_file_names(self):
        """The run's stored files: ./outputs and ./logs, uploads, and its output
        (user_logs/std_log.txt)."""
        names = [a["path"] for a in self.workspace._call("run.outputs",
                                                         {"run": self.id})["artifacts"]]
        return sorted(set(names) | {STD_LOG})

    def _std_log(self):
        out, after = [], 0
        while True:
            page = self.workspace._call("run.logs", {"run": self.id, "after_seq": after})
            out += [l["text"] + "\n" for l in page["lines"]]
            after = page["next_seq"]
            if not page["more"]:
                return "".join(out)

    def download_file(self, name, output_file_path=None, _validate_checksum=False):
        """Fetch one of the run's files to output_file_path (a file, or a
        directory to put it in; default: its base name here)."""
        import base64
        dest = output_file_path or os.path.basename(name)
        if os.path.isdir(dest):
            dest = os.path.join(dest, os.path.basename(name))
        os.makedirs(os.path.dirname(os.path.abspath(dest)), exist_ok=True)
        tmp = dest + ".part"
        try:
            with open(tmp, "wb") as out:
                if name == STD_LOG:
                    out.write(self._std_log().encode())
                else:
                    offset = 0
                    while True:
                        try:
                            page = self.workspace._call("artifact.read", {
                                "run": self.id, "path": name, "offset": offset})
                        except DaemonError as e:
                            if e.code == "NotFound":
                                raise RunyardError(
                                    "run %s has no file %r (its files: %s)"
                                    % (self.id, name, ", ".join(self.get_file_names()))) from None
                            raise
                        data = base64.b64decode(page["data"])
                        out.write(data)
                        offset += len(data)
                        if page["eof"] or not data:
                            break
            os.replace(tmp, dest)
        finally:
            if os.path.exists(tmp):
                os.unlink(tmp)
        return dest

    def download_files(self, prefix=None, output_directory=None, output_paths=None,
                       batch_size=100, append_prefix=True):
        """Fetch the run's files whose names start with prefix into output_directory."""
        out_dir = output_directory or "."
        done = []
        for n in self.get_file_names():
            if prefix and not n.startswith(prefix):
                continue
            rel = n if append_prefix or not prefix else n[len(prefix):].lstrip("/")
            dest = os.path.join(out_dir, *rel.split("/"))
            done.append(self.download_file(n, dest))
        return done

    # -- models ----------------------------------------------------------------------

    def register_model(self, model_name, model_path=None, tags=None, properties=None,
                       model_framework=None, model_framework_version=None, description=None,
                       datasets=None, sample_input_dataset=None, sample_output_dataset=None,
                       resource_configuration=None, **kwargs):
        """Register the run's output model_path (default: model_name) as a new
        version of model_name."""
        args = _register_args(model_name, tags, properties, description, model_framework,
                              model_framework_version, resource_configuration)
        args["run"] = self.id
        args["path"] = model_path or model_name
        return Model._from_json(self.workspace,
                                self.workspace._call("model.register", args, timeout=None))

    # -- waiting ---------------------------------------------------------------------

    def wait_for_completion(self, show_output=False, wait_post_processing=False,
                            raise_on_error=True):
        """Wait until the run has ended and return its details. show_output
        prints "RunId: ...", the run's output as it is produced, then an
        "Execution Summary". A failed run raises ActivityFailedException with
        its error (unless raise_on_error is False)."""
        out = sys.stdout
        if show_output:
            out.write("RunId: %s\nWeb View: runyard show %d\n\n" % (self.id, self.number))
            out.write("Streaming %s\n%s\n\n" % (STD_LOG, "=" * (len(STD_LOG) + 10)))
            out.flush()
        client = _Client(self.workspace.socket_path)
        building = False  # inside the environment's build output
        try:
            for msg in client.subscribe("run.watch", {"run": self.id, "logs": bool(show_output)}):
                if "event" not in msg:            # the reply: the watch began
                    self._doc = msg.get("run") or self._doc
                    continue
                ev, data = msg["event"], msg.get("data") or {}
                if ev == "run.log" and show_output:
                    for line in data.get("lines", []):
                        env = line.get("stream") == "environment"
                        if env and not building:
                            # the daemon stores a build's output in the
                            # runs that wait for it, live, before any line
                            # of the program (docs/environments.md)
                            ref = (self._doc.get("properties") or {}).get("environment", "")
                            title = "Environment %s: built for this run" % ref
                            out.write("%s\n%s\n" % (title, "-" * len(title)))
                        elif building and not env:
                            out.write("\n")
                        building = env
                        out.write(line["text"] + "\n")
                    out.flush()
                elif ev == "run.end":
                    self._doc = data.get("run") or self._doc
                    break
        finally:
            client.close()
        doc = self._show()
        details = self._details(doc)
        if show_output:
            out.write("\nExecution Summary\n=================\nRunId: %s\nWeb View: runyard "
                      "show %d\n\n" % (self.id, self.number))
            if doc["status"] != "Completed":
                out.write("Status: %s\n" % doc["status"])
            if details.get("warnings"):
                out.write("Warnings:\n%s\n" % "\n".join(w["message"]
                                                          for w in details["warnings"]))
            if details.get("error"):
                out.write("Error occurred: %s\n\n" % details["error"]["error"]["message"])
            out.flush()
        if raise_on_error and doc["status"] == "Failed":
            raise ActivityFailedException(
                "Activity Failed:\n%s" % json.dumps(details.get("error"), indent=4),
                details.get("error"))
        return details


def _full(ws, doc, tags, properties):
    """The run's document with its tags and properties when a filter needs
    them (run.list's objects do not carry properties)."""
    if (tags is not None or properties is not None) and "properties" not in doc:
        try:
            return ws._call("run.show", {"run": doc["id"]})
        except DaemonError:
            return doc
    return doc


def _matches(doc, type=None, tags=None, properties=None):
    """get_runs / get_children filters as the cloud applies them: type
    ("azureml.scriptrun", "azureml.hyperdrive", "interactive" or runyard's
    kind), tags (a key, a list of keys, or {key: value}) and properties
    ({key: value})."""
    if type is not None:
        kind = doc.get("kind") or "run"
        names = {"run": ("run", "azureml.scriptrun"), "sweep": ("sweep", "hyperdrive",
                                                                 "azureml.hyperdrive"),
                 "interactive": ("interactive", "azureml.interactive"),
                 "array": ("array",)}.get(kind, (kind,))
        if type not in names:
            return False
    have = doc.get("tags") or {}
    if tags is not None:
        if isinstance(tags, str):
            tags = [tags]
        if isinstance(tags, dict):
            if any(k not in have or (v is not None and have[k] != str(v))
                   for k, v in tags.items()):
                return False
        elif any(k not in have for k in tags):
            return False
    if properties is not None:
        props = doc.get("properties") or {}
        if isinstance(properties, str):
            properties = [properties]
        if isinstance(properties, dict):
            if any(k not in props or (v is not None and props[k] != str(v))
                   for k, v in properties.items()):
                return False
        elif any(k not in props for k in properties):
            return False
    return True


def _user():
    import getpass
    try:
        return getpass.getuser()
    except (KeyError, OSError):
        return str(os.getuid())


def _handle(ws, doc):
    """The object for a run document: a HyperDriveRun for a sweep."""
    if doc.get("kind") == "sweep":
        from runyard._hyperdrive import get_hyperdrive_run
        return get_hyperdrive_run(ws, doc["id"], doc)
    return RunHandle(ws, doc["id"], _doc=doc)


def get_run(workspace, run_id):
    """Run.get / Workspace.get_run: a RunHandle, or a HyperDriveRun for a sweep."""
    ws = Workspace() if workspace is None else workspace
    run = RunHandle(ws, run_id)
    return _handle(ws, run._doc) if run._doc.get("kind") == "sweep" else run
