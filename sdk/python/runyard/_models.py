"""Models and services from Python: register, deploy, call (docs/models.md).

    from runyard import Workspace, Model, ResourceConfiguration
    ws = Workspace.from_config()                    # the local runyardd
    model = Model.register(ws, model_path="model.joblib", model_name="sklearn-iris",
                           model_framework=Model.Framework.SCIKITLEARN,
                           resource_configuration=ResourceConfiguration(cpu=1, memory_in_gb=0.5))
    service = Model.deploy(ws, "iris-svc", [model])
    service.wait_for_deployment(show_output=True)
    print(service.run(json.dumps({"data": [[5.1, 3.5, 1.4, 0.2]]})))

Inside a run, run.register_model(model_name, model_path="outputs/model.joblib")
registers the run's own output (with the run's token). The azureml.core
compatibility module re-exports these classes under the cloud SDK's names.

Pure standard library.
"""

import json
import os

from runyard._run import DaemonError, RunyardError, _Client


class WebserviceException(RunyardError):
    """A service could not be deployed, or answered a request with an error."""

    def __init__(self, message, status=None):
        super().__init__(message)
        self.status = status


def default_socket():
    """Where the CLI looks for runyardd: $RUNYARD_SOCKET, else
    $XDG_RUNTIME_DIR/runyard/runyard.sock, else the state directory's."""
    env = os.environ
    if env.get("RUNYARD_SOCKET"):
        return env["RUNYARD_SOCKET"]
    rt = env.get("XDG_RUNTIME_DIR", "")
    if rt.startswith("/"):
        return os.path.join(rt, "runyard", "runyard.sock")
    state = env.get("XDG_STATE_HOME", "")
    if not state.startswith("/"):
        state = os.path.join(os.path.expanduser("~"), ".local", "state")
    return os.path.join(state, "runyard", "runyard.sock")


CONFIG_NAMES = ("config.json", os.path.join(".azureml", "config.json"),
                os.path.join("aml_config", "config.json"))


def find_config(path=None, file_name=None):
    """The config.json a notebook would load: path itself when it is a file;
    else, in path (default: the current directory and its parents), the
    file_name given or config.json, .azureml/config.json, aml_config/config.json.
    None when there is none."""
    names = (file_name,) if file_name else CONFIG_NAMES
    if path is not None and os.path.isfile(path):
        return os.path.abspath(path)
    start = os.path.abspath(path or os.getcwd())
    d = start
    while True:
        for n in names:
            f = os.path.join(d, n)
            if os.path.isfile(f):
                return f
        if path is not None:
            return None       # an explicit directory: not its parents
        up = os.path.dirname(d)
        if up == d:
            return None
        d = up


class Workspace:
    """runyard's stand-in for a cloud workspace: the local runyardd, reached
    through its socket. The cloud's arguments (subscription, resource group)
    are accepted and ignored."""

    def __init__(self, subscription_id=None, resource_group=None, workspace_name=None,
                 socket_path=None, **kwargs):
        # strings, as the cloud's are (notebooks print "..." + ws.subscription_id)
        self.subscription_id = subscription_id if subscription_id is not None else ""
        self.resource_group = resource_group if resource_group is not None else ""
        self.name = workspace_name or "runyard"
        self.location = "local"
        self.socket_path = socket_path or default_socket()
        self._client = _Client(self.socket_path)
        self._config_path = None

    @classmethod
    def from_config(cls, path=None, auth=None, _logger=None, _file_name=None):
        """The local runyardd. A config.json (found as the cloud SDK finds it:
        in path, else the current directory or a parent, also under .azureml/)
        is optional; its cloud fields (subscription_id, resource_group,
        workspace_name) are kept as attributes and otherwise ignored, and its
        "runyard_socket" names the daemon's socket unless $RUNYARD_SOCKET
        does. Raises DaemonError when no daemon answers, saying how to start
        one."""
        config, cfg_path = {}, find_config(path, _file_name)
        if cfg_path is not None:
            try:
                with open(cfg_path, encoding="utf-8") as f:
                    config = json.load(f)
            except (OSError, ValueError) as e:
                raise RunyardError("cannot read the workspace configuration %s: %s"
                                   % (cfg_path, e)) from None
            if not isinstance(config, dict):
                raise RunyardError("the workspace configuration %s is not a JSON object"
                                   % cfg_path)
        elif path is not None and _file_name is not None:
            raise RunyardError("no workspace configuration %s in %s" % (_file_name, path))
        sock = os.environ.get("RUNYARD_SOCKET") or config.get("runyard_socket") or None
        ws = cls(config.get("subscription_id"), config.get("resource_group"),
                 config.get("workspace_name"), socket_path=sock)
        ws._config_path = cfg_path
        ws._probe()
        return ws

    @classmethod
    def get(cls, name=None, auth=None, subscription_id=None, resource_group=None, **kwargs):
        return cls(subscription_id, resource_group, name)

    @classmethod
    def create(cls, name, auth=None, subscription_id=None, resource_group=None, location=None,
               create_resource_group=True, exist_ok=False, show_output=True, **kwargs):
        """The local runyardd under the name given (nothing is created: the
        daemon is the workspace). Raises DaemonError when none answers."""
        ws = cls(subscription_id, resource_group, name)
        ws._probe()
        if show_output:
            print("runyard: workspace %r is the runyardd at %s" % (name, ws.socket_path))
        return ws

    def write_config(self, path=None, file_name=None):
        """Write config.json (in path/.azureml, as the cloud SDK does) with
        the workspace's names and its socket."""
        d = os.path.join(path or ".", ".azureml")
        os.makedirs(d, exist_ok=True)
        with open(os.path.join(d, file_name or "config.json"), "w", encoding="utf-8") as f:
            json.dump({"subscription_id": self.subscription_id,
                       "resource_group": self.resource_group, "workspace_name": self.name,
                       "runyard_socket": self.socket_path}, f, indent=4)

    def get_default_keyvault(self):
        raise NotImplementedError("Workspace.get_default_keyvault (Key Vault secrets) is not "
                                  "supported by runyard; pass secrets to runs as environment "
                                  "variables (env.environment_variables)")

    def __repr__(self):
        return "Workspace(name=%r, socket=%r)" % (self.name, self.socket_path)

    def _probe(self):
        """Check that a runyardd answers, with an error that says what to do."""
        try:
            self._call("daemon.status", timeout=10.0)
        except DaemonError as e:
            if e.code is not None:
                raise
            how = ("set RUNYARD_SOCKET (or \"runyard_socket\" in config.json) to its socket"
                   if not os.environ.get("RUNYARD_SOCKET") else
                   "check RUNYARD_SOCKET, which names this socket")
            raise DaemonError(
                "no runyardd answers at %s (%s). Start one with 'runyard daemon start' "
                "(or run 'runyardd --socket %s' yourself); if a daemon runs elsewhere, %s."
                % (self.socket_path, str(e).rsplit(": ", 1)[-1], self.socket_path, how),
                "Unavailable") from None

    def _call(self, op, args=None, timeout=30.0):
        """Call op; timeout None waits as long as the daemon takes (deploys,
        registrations of large files)."""
        c = self._client
        c.timeout = timeout
        if c.sock is not None:
            c.sock.settimeout(timeout)
        try:
            return c.call(op, args or {})
        finally:
            c.timeout = 30.0
            if c.sock is not None:
                c.sock.settimeout(30.0)

    def get_details(self):
        st = self._call("daemon.status")
        return {"name": self.name, "location": self.location, "socket": self.socket_path,
                "stateDir": st.get("state_dir"), "version": st.get("version"),
                "subscriptionId": self.subscription_id, "resourceGroup": self.resource_group}

    @property
    def models(self):
        """{name: the latest version's Model}."""
        out = {}
        for m in self._call("model.list")["models"]:
            out[m["name"]] = Model._from_json(self, m)
        return out

    @property
    def webservices(self):
        return {s["name"]: Webservice._from_json(self, s)
                for s in self._call("service.list")["services"]}

    @property
    def compute_targets(self):
        """{name: ComputeTarget}: 'local' and the daemon's cluster targets."""
        from runyard._notebook import compute_targets
        return compute_targets(self)

    @property
    def environments(self):
        """{name: the latest version's Environment}."""
        from runyard._notebook import Environment
        return Environment.list(self)

    @property
    def experiments(self):
        from runyard._notebook import Experiment
        return {e["name"]: Experiment(self, e["name"])
                for e in self._call("experiment.list")["experiments"]}

    def get_run(self, run_id):
        from runyard._notebook import get_run
        return get_run(self, run_id)

    # -- datastores (local directories; runyard/_data.py) ------------------------------

    def get_default_datastore(self):
        from runyard._data import get_default_datastore
        return get_default_datastore(self)

    def set_default_datastore(self, name):
        from runyard._data import set_default_datastore
        set_default_datastore(self, name)

    @property
    def datastores(self):
        """{name: Datastore}."""
        from runyard._data import datastores
        return datastores(self)

    @property
    def datasets(self):
        """{name: the latest version's dataset}."""
        from azureml.core.dataset import Dataset
        return Dataset.get_all(self)


def _as_workspace(ws):
    if ws is None:
        return Workspace()
    if isinstance(ws, Workspace):
        return ws
    if hasattr(ws, "_call"):
        return ws
    raise TypeError("expected a Workspace, not %s" % type(ws).__name__)


class Framework:
    """Model.Framework: the names runyard (and the cloud original) record."""
    CUSTOM = "Custom"
    MULTI = "Multi"
    ONNX = "Onnx"
    PYTORCH = "PyTorch"
    SCIKITLEARN = "ScikitLearn"
    TENSORFLOW = "TensorFlow"
    TFKERAS = "TfKeras"


class ResourceConfiguration:
    """What a deployment of the model should get: CPUs and memory (recorded
    with the model; runyard's local services do not enforce them)."""

    def __init__(self, cpu=None, memory_in_gb=None, gpu=None):
        for name, v in (("cpu", cpu), ("memory_in_gb", memory_in_gb)):
            if v is not None and (isinstance(v, bool) or not isinstance(v, (int, float))
                                  or not v > 0):
                raise ValueError("ResourceConfiguration: %s must be a number above 0, not %r"
                                 % (name, v))
        self.cpu = cpu
        self.memory_in_gb = memory_in_gb
        self.gpu = gpu

    def __repr__(self):
        return "ResourceConfiguration(cpu=%r, memory_in_gb=%r)" % (self.cpu, self.memory_in_gb)

    def serialize(self):
        return {"cpu": self.cpu, "memoryInGB": self.memory_in_gb, "gpu": self.gpu}

    @staticmethod
    def deserialize(payload):
        if not payload:
            return None
        return ResourceConfiguration(payload.get("cpu"),
                                     payload.get("memory_in_gb", payload.get("memoryInGB")),
                                     payload.get("gpu"))


def _register_args(model_name, tags, properties, description, model_framework,
                   model_framework_version, resource_configuration):
    args = {"name": model_name}
    if model_framework is not None:
        args["framework"] = model_framework
    if model_framework_version is not None:
        args["framework_version"] = str(model_framework_version)
    if description is not None:
        args["description"] = description
    for key, given in (("tags", tags), ("properties", properties)):
        if given:
            args[key] = {str(k): "" if v is None else str(v) for k, v in given.items()}
    rc = resource_configuration
    if rc is not None:
        if isinstance(rc, dict):
            rc = ResourceConfiguration.deserialize(rc)
        if rc.cpu is not None:
            args["cpu"] = rc.cpu
        if rc.memory_in_gb is not None:
            args["memory_gb"] = rc.memory_in_gb
    return args


class Model:
    """A registered model version."""

    Framework = Framework

    def __init__(self, workspace, name=None, id=None, tags=None, properties=None, version=None,
                 run_id=None, model_framework=None, expand=True, **kwargs):
        ws = _as_workspace(workspace)
        ref = id or name
        if not ref:
            raise ValueError("Model(workspace, name=...) needs a name or an id")
        if version is not None and ":" not in ref:
            ref = "%s:%d" % (ref, int(version))
        try:
            doc = ws._call("model.show", {"model": ref})
        except DaemonError as e:
            if e.code == "NotFound":
                raise WebserviceException("ModelNotFound: model not found: %s" % ref) from None
            raise
        self._load(ws, doc)

    def _load(self, ws, doc):
        self.workspace = ws
        self._doc = doc
        self.name = doc["name"]
        self.version = doc["version"]
        self.id = doc["id"]
        self.model_framework = doc.get("framework")
        self.model_framework_version = doc.get("framework_version")
        self.resource_configuration = ResourceConfiguration.deserialize(
            doc.get("resource_configuration"))
        self.description = doc.get("description")
        self.tags = dict(doc.get("tags") or {})
        self.properties = dict(doc.get("properties") or {})
        run = doc.get("run")
        self.run_id = run.get("id") if run else None
        self.created_time = doc.get("created_at")
        self.url = doc.get("path")
        self.files = doc.get("files")

    @classmethod
    def _from_json(cls, ws, doc):
        m = cls.__new__(cls)
        m._load(ws, doc)
        return m

    def __repr__(self):
        return ("Model(workspace=%r, name=%s, id=%s, version=%s, framework=%s)"
                % (self.workspace, self.name, self.id, self.version, self.model_framework))

    @property
    def framework(self):
        return self.model_framework

    @property
    def framework_version(self):
        return self.model_framework_version

    def serialize(self):
        return dict(self._doc)

    # -- registering ------------------------------------------------------------------

    @staticmethod
    def register(workspace, model_path, model_name, tags=None, properties=None,
                 description=None, datasets=None, model_framework=None,
                 model_framework_version=None, child_paths=None, sample_input_dataset=None,
                 sample_output_dataset=None, resource_configuration=None, **kwargs):
        """Register a local file or folder as a new version of model_name."""
        ws = _as_workspace(workspace)
        path = os.path.abspath(os.fspath(model_path))
        if not os.path.exists(path):
            raise FileNotFoundError("Model.register: %s does not exist" % model_path)
        args = _register_args(model_name, tags, properties, description, model_framework,
                              model_framework_version, resource_configuration)
        args["file"] = path
        return Model._from_json(ws, ws._call("model.register", args, timeout=None))

    @staticmethod
    def list(workspace, name=None, tags=None, properties=None, run_id=None, latest=False,
             **kwargs):
        ws = _as_workspace(workspace)
        docs = ws._call("model.list", {"name": name} if name else {})["models"]
        if run_id is not None:
            docs = [d for d in docs if d.get("run") and run_id in (d["run"].get("id"),
                                                                  d["run"].get("seq"))]
        if latest:
            best = {}
            for d in docs:
                if d["name"] not in best or d["version"] > best[d["name"]]["version"]:
                    best[d["name"]] = d
            docs = list(best.values())
        return [Model._from_json(ws, d) for d in docs]

    # -- files ------------------------------------------------------------------------

    def download(self, target_dir=".", exist_ok=False, exists_ok=None):
        """Fetch the model's files into target_dir; the path of its file (or folder)."""
        import base64
        import hashlib
        if exists_ok is not None:
            exist_ok = exists_ok
        files = self._doc.get("files")
        if files is None:
            files = self.workspace._call("model.show", {"model": self.id})["files"]
        os.makedirs(target_dir, exist_ok=True)
        for f in files:
            dest = os.path.join(target_dir, *f["path"].split("/"))
            if os.path.exists(dest) and not exist_ok:
                raise RunyardError("%s exists; pass exist_ok=True to replace it" % dest)
            os.makedirs(os.path.dirname(dest) or ".", exist_ok=True)
            h = hashlib.sha256()
            tmp = dest + ".part"
            with open(tmp, "wb") as out:
                offset = 0
                while True:
                    page = self.workspace._call("model.read", {"model": self.id,
                                                               "path": f["path"],
                                                               "offset": offset})
                    data = base64.b64decode(page["data"])
                    out.write(data)
                    h.update(data)
                    offset += len(data)
                    if page["eof"] or not data:
                        break
            if h.hexdigest() != f["sha256"]:
                os.unlink(tmp)
                raise RunyardError("%s: the download does not match its sha256" % f["path"])
            os.chmod(tmp, f.get("mode", 0o644) & 0o777)
            os.replace(tmp, dest)
        tops = {f["path"].split("/")[0] for f in files}
        return os.path.join(target_dir, tops.pop()) if len(tops) == 1 else target_dir

    def package(self, *args, **kwargs):
        raise NotImplementedError("Model.package (Docker images) is not supported by runyard; "
                                  "Model.deploy serves the model locally")

    @staticmethod
    def profile(*args, **kwargs):
        raise NotImplementedError("Model.profile is not supported by runyard")

    @staticmethod
    def get_model_path(model_name, version=None, _workspace=None):
        """Where a model's file (or folder) is: inside a runyard service, in its
        model directory; else downloaded from the workspace into
        ./azureml-models/NAME/VERSION."""
        mdir = os.environ.get("AZUREML_MODEL_DIR") or os.environ.get("RUNYARD_MODEL_DIR")
        if mdir and _workspace is None:
            name_dir = os.path.dirname(mdir.rstrip("/"))
            if os.path.basename(name_dir) != model_name:
                raise RunyardError("this service serves model %s, not %s"
                                   % (os.path.basename(name_dir), model_name))
            entries = sorted(os.listdir(mdir))
            return os.path.join(mdir, entries[0]) if len(entries) == 1 else mdir
        ws = _as_workspace(_workspace)
        m = Model(ws, model_name, version=version)
        target = os.path.join("azureml-models", m.name, str(m.version))
        return m.download(target, exist_ok=True)

    def delete(self):
        self.workspace._call("model.delete", {"model": self.id})

    # -- deploying --------------------------------------------------------------------

    @staticmethod
    def deploy(workspace, name, models, inference_config=None, deployment_config=None,
               deployment_target=None, overwrite=False, show_output=False):
        """Serve models[0] as service name on 127.0.0.1 and return the service at
        once (wait_for_deployment waits). A scikit-learn model needs no
        inference_config; others take InferenceConfig(entry_script,
        source_directory). A service that exists is replaced only with
        overwrite=True (without dropping a request)."""
        ws = _as_workspace(workspace)
        models = list(models)
        if len(models) != 1:
            raise WebserviceException("a runyard service serves one model; %d were given"
                                      % len(models))
        if not overwrite:
            try:
                ws._call("service.show", {"service": name})
                raise WebserviceException(
                    "service %s already exists; pass overwrite=True to deploy the model to "
                    "it, or use service.update(models=[...])" % name)
            except DaemonError as e:
                if e.code != "NotFound":
                    raise
        svc = Webservice._deploy(ws, name, models[0], inference_config, deployment_config)
        if show_output:
            svc.wait_for_deployment(show_output=True)
        return svc


class InferenceConfig:
    """A scoring script: init() once, then run(raw_data) for each request."""

    def __init__(self, entry_script, runtime=None, conda_file=None, extra_docker_file_steps=None,
                 source_directory=None, enable_gpu=None, description=None, base_image=None,
                 base_image_registry=None, cuda_version=None, environment=None):
        self.entry_script = entry_script
        self.source_directory = source_directory
        self.environment = environment
        self.description = description


class _DeploymentConfig:
    def __init__(self, port=None, **kwargs):
        self.port = port
        self.options = kwargs


class LocalWebservice:
    """LocalWebservice.deploy_configuration(port=...) for Model.deploy."""

    @staticmethod
    def deploy_configuration(port=None):
        return _DeploymentConfig(port=port)


class AciWebservice:
    """Accepted for scripts written for the cloud: served locally all the same,
    each instance held to cpu_cores and memory_gb (over the model's
    ResourceConfiguration)."""

    @staticmethod
    def deploy_configuration(cpu_cores=None, memory_gb=None, **kwargs):
        return _DeploymentConfig(cpu_cores=cpu_cores, memory_gb=memory_gb)


_opener = None


def _no_proxy():
    """An opener that never goes through a proxy: services are on 127.0.0.1.
    (urllib is imported here, not with the module, to keep runs' start fast.)"""
    global _opener
    if _opener is None:
        import urllib.request
        _opener = urllib.request.build_opener(urllib.request.ProxyHandler({}))
    return _opener


class Webservice:
    """A deployed service: scoring_uri, state, run(), get_logs(), delete()."""

    compute_type = "local"

    def __init__(self, workspace, name):
        ws = _as_workspace(workspace)
        try:
            doc = ws._call("service.show", {"service": name})
        except DaemonError as e:
            if e.code == "NotFound":
                raise WebserviceException("service not found: %s" % name) from None
            raise
        self._load(ws, doc)

    def _load(self, ws, doc):
        self.workspace = ws
        self._doc = doc
        self.name = doc["name"]
        self.state = doc["state"]
        self.port = doc["port"]
        self.scoring_uri = doc["scoring_uri"]
        self.swagger_uri = None
        self.models = [doc["model"]]
        self.error = doc.get("error")
        if not hasattr(self, "_expect"):
            self._expect = None

    @classmethod
    def _from_json(cls, ws, doc):
        s = cls.__new__(cls)
        s._load(ws, doc)
        return s

    def __repr__(self):
        return "Webservice(name=%r, state=%r, scoring_uri=%r)" % (self.name, self.state,
                                                                 self.scoring_uri)

    @staticmethod
    def list(workspace, **kwargs):
        ws = _as_workspace(workspace)
        return [Webservice._from_json(ws, d) for d in ws._call("service.list")["services"]]

    @staticmethod
    def _deploy(ws, name, model, inference_config, deployment_config):
        args = {"model": model.id if isinstance(model, Model) else str(model),
                "service": name, "wait": False}
        if inference_config is not None:
            args["entry_script"] = inference_config.entry_script
            args["source"] = os.path.abspath(inference_config.source_directory or ".")
            env = inference_config.environment
            python = getattr(env, "python_interpreter", None) or (
                env if isinstance(env, str) and os.path.isabs(env) else None)
            if python:
                args["python"] = python
        port = getattr(deployment_config, "port", None)
        if port:
            args["port"] = int(port)
        opts = getattr(deployment_config, "options", None) or {}
        for key, arg in (("cpu_cores", "cpu"), ("memory_gb", "memory_gb")):
            if opts.get(key) is not None:
                args[arg] = float(opts[key])
        svc = Webservice._from_json(ws, ws._call("model.deploy", args, timeout=None))
        svc._expect = args["model"]
        return svc

    def update_deployment_state(self):
        self._load(self.workspace, self.workspace._call("service.show", {"service": self.name}))

    reload = update_deployment_state

    def wait_for_deployment(self, show_output=False, timeout_sec=None):
        """Wait until the deployment has settled: Healthy, or an error
        (WebserviceException) when it failed."""
        if show_output:
            print("Waiting for service %s (model %s) to be healthy" % (self.name,
                                                                        self.models[0]))
        doc = self.workspace._call("service.wait", {"service": self.name}, timeout=timeout_sec)
        self._load(self.workspace, doc)
        failed = self.state == "Failed" or (self._expect and self.models[0] != self._expect)
        if show_output:
            print("%s\nLocal service creation operation finished, operation \"%s\""
                  % (self.state, "Failed" if failed else "Succeeded"))
        if failed:
            raise WebserviceException("service %s: deployment failed: %s"
                                      % (self.name, self.error or self.state))
        self._expect = None
        return self

    def run(self, input_data, path="/score"):
        """POST input_data (JSON text, or something json can write) and return
        the answer, parsed."""
        import urllib.error
        import urllib.request
        if isinstance(input_data, (bytes, bytearray)):
            body = bytes(input_data)
        elif isinstance(input_data, str):
            body = input_data.encode()
        else:
            body = json.dumps(input_data, default=_jsonable).encode()
        uri = self.scoring_uri if path == "/score" else "http://127.0.0.1:%d%s" % (self.port,
                                                                                 path)
        req = urllib.request.Request(uri, data=body, method="POST",
                                     headers={"Content-Type": "application/json"})
        try:
            with _no_proxy().open(req, timeout=60) as resp:
                text = resp.read().decode("utf-8")
        except urllib.error.HTTPError as e:
            detail = e.read().decode("utf-8", "replace")
            try:
                doc = json.loads(detail)
                detail = doc.get("error") or doc.get("message") or detail
            except ValueError:
                pass
            raise WebserviceException("service %s answered %d: %s" % (self.name, e.code,
                                                                       detail),
                                      status=e.code) from None
        except urllib.error.URLError as e:
            raise WebserviceException("cannot reach service %s at %s: %s"
                                      % (self.name, uri, e.reason)) from None
        try:
            return json.loads(text)
        except ValueError:
            return text

    def get_logs(self, num_lines=5000, init=False):
        args = {"service": self.name}
        if num_lines:
            args["lines"] = int(num_lines)
        return self.workspace._call("service.logs", args)["text"]

    def update(self, models=None, inference_config=None, deployment_config=None, **kwargs):
        """Deploy another model (or script) to this service; clients are
        switched over without an error once it is healthy."""
        model = list(models)[0] if models else self.models[0]
        svc = Webservice._deploy(self.workspace, self.name, model, inference_config, None)
        self._load(self.workspace, svc._doc)
        self._expect = svc._expect

    def delete(self):
        self.workspace._call("service.delete", {"service": self.name})
        self.state = "Deleted"

    def get_keys(self):
        return ("", "")

    def serialize(self):
        return dict(self._doc)


def _jsonable(v):
    if hasattr(v, "tolist"):
        return v.tolist()
    if hasattr(v, "item"):
        return v.item()
    raise TypeError("%s is not JSON serializable" % type(v).__name__)


def register_in_run(run, model_name, model_path, tags, properties, model_framework,
                    model_framework_version, description, resource_configuration):
    """run.register_model() inside a run: its own output, with its token."""
    args = _register_args(model_name, tags, properties, description, model_framework,
                          model_framework_version, resource_configuration)
    args["path"] = model_path or model_name
    ws = run.experiment.workspace
    return Model._from_json(ws, run._ask("model.register", **args))
