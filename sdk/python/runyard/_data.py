"""Datastores and tabular datasets of the v1 SDK, on this machine (docs/sdk.md).

A datastore is a local directory: the default one (workspaceblobstore) is
$XDG_DATA_HOME/runyard/datastores/workspaceblobstore, a registered blob
container ACCOUNT/CONTAINER under the same root (the cloud's credentials
are accepted and ignored). The SDK keeps the datastores it registered, per
daemon socket, in $XDG_CONFIG_HOME/runyard/sdk-datastores.json.

A TabularDataset is delimited files (CSV, TSV) read with pandas (Debian's
python3-pandas); registered, it is the daemon's file dataset of those files,
and the SDK keeps how to parse them (separator, header) beside the
datastores. As a run's named input the run's process gets it back from
run.input_datasets[name] as a TabularDataset of its copy of the files.

Pure standard library, apart from pandas when a dataframe is asked for.
"""

import glob
import json
import os
import shutil

from runyard._run import UserErrorException

DEFAULT_DATASTORE = "workspaceblobstore"
TABULAR_PREFIX = "RUNYARD_TABULAR_"
_DELIMITED = (".csv", ".tsv", ".txt", ".data")


# -- the SDK's own records -----------------------------------------------------------


def _config_file(name):
    base = os.environ.get("XDG_CONFIG_HOME") or os.path.join(os.path.expanduser("~"), ".config")
    return os.path.join(base, "runyard", name)


def _load(name, ws):
    try:
        with open(_config_file(name), encoding="utf-8") as f:
            doc = json.load(f)
    except (OSError, ValueError):
        doc = {}
    if not isinstance(doc, dict):
        doc = {}
    mine = doc.get(os.path.abspath(ws.socket_path))
    return doc, (mine if isinstance(mine, dict) else {})


def _save(name, ws, mine):
    doc, _ = _load(name, ws)
    doc[os.path.abspath(ws.socket_path)] = mine
    path = _config_file(name)
    os.makedirs(os.path.dirname(path), exist_ok=True)
    tmp = "%s.%d.tmp" % (path, os.getpid())
    with open(tmp, "w", encoding="utf-8") as f:
        json.dump(doc, f, indent=1, sort_keys=True)
    os.replace(tmp, path)


def datastore_root():
    base = os.environ.get("XDG_DATA_HOME") or os.path.join(os.path.expanduser("~"), ".local",
                                                           "share")
    return os.path.join(base, "runyard", "datastores")


# -- datastores ------------------------------------------------------------------------


class Datastore:
    """A datastore: a directory on this machine. Datastore(ws, name) or
    Datastore.get(ws, name); ws.get_default_datastore()."""

    def __init__(self, workspace, name=None, _doc=None):
        from runyard._models import _as_workspace
        self.workspace = _as_workspace(workspace)
        name = name or DEFAULT_DATASTORE
        if _doc is None:
            _doc = _datastores(self.workspace).get(name)
            if _doc is None:
                raise UserErrorException(
                    "no datastore named %r (this workspace has: %s); register one with "
                    "Datastore.register_azure_blob_container(...)"
                    % (name, ", ".join(sorted(_datastores(self.workspace)))))
        self.name = name
        self._doc = _doc
        self.datastore_type = _doc.get("type", "AzureBlob")
        self.container_name = _doc.get("container_name")
        self.account_name = _doc.get("account_name")
        self.local_path = _doc["path"]
        os.makedirs(self.local_path, exist_ok=True)

    def __repr__(self):
        return "Datastore(name=%r, local_path=%r)" % (self.name, self.local_path)

    @property
    def _runyard_dir(self):
        return self.local_path

    # -- the cloud's calls --------------------------------------------------------

    @staticmethod
    def get(workspace, datastore_name):
        return Datastore(workspace, datastore_name)

    @staticmethod
    def get_default(workspace):
        return get_default_datastore(workspace)

    @staticmethod
    def register_azure_blob_container(workspace, datastore_name, container_name, account_name,
                                      sas_token=None, account_key=None, protocol=None,
                                      endpoint=None, overwrite=False, create_if_not_exists=False,
                                      skip_validation=False, blob_cache_timeout=None,
                                      grant_workspace_access=False, subscription_id=None,
                                      resource_group=None):
        """A datastore for a blob container: the local directory
        ACCOUNT/CONTAINER under the datastores' root (credentials ignored)."""
        return _register(workspace, datastore_name, "AzureBlob", account_name, container_name,
                         overwrite)

    @staticmethod
    def register_azure_file_share(workspace, datastore_name, file_share_name, account_name,
                                  sas_token=None, account_key=None, protocol=None,
                                  endpoint=None, overwrite=False, create_if_not_exists=False,
                                  skip_validation=False):
        return _register(workspace, datastore_name, "AzureFile", account_name, file_share_name,
                         overwrite)

    def unregister(self):
        mine = _load("sdk-datastores.json", self.workspace)[1]
        mine.pop(self.name, None)
        _save("sdk-datastores.json", self.workspace, mine)

    def _dest(self, target_path):
        rel = (target_path or "").strip("/")
        parts = [p for p in rel.split("/") if p]
        if any(p in (".", "..") for p in parts):
            raise UserErrorException("target_path %r must stay inside the datastore"
                                     % target_path)
        return os.path.join(self.local_path, *parts)

    def _copy(self, src, dest, overwrite, show_progress, done):
        if os.path.exists(dest) and not overwrite:
            if show_progress:
                print("Target already exists. Skipping upload for %s"
                      % os.path.relpath(dest, self.local_path))
            return
        os.makedirs(os.path.dirname(dest), exist_ok=True)
        shutil.copyfile(src, dest)
        done.append(dest)
        if show_progress:
            print("Uploading %s" % src)

    def upload_files(self, files, relative_root=None, target_path=None, overwrite=False,
                     show_progress=True):
        """Copy files into target_path (each under its path relative to
        relative_root, else its base name); existing files are skipped
        unless overwrite. Returns a DataReference of target_path."""
        done = []
        base = self._dest(target_path)
        for f in files:
            if not os.path.isfile(f):
                raise UserErrorException("upload_files: %s is not a file" % f)
            rel = os.path.relpath(f, relative_root) if relative_root else os.path.basename(f)
            self._copy(f, os.path.join(base, rel), overwrite, show_progress, done)
        if show_progress:
            print("Uploaded %d files" % len(done))
        return DataReference(self, target_path)

    def upload(self, src_dir, target_path=None, overwrite=False, show_progress=True):
        """Copy the tree src_dir into target_path."""
        if not os.path.isdir(src_dir):
            raise UserErrorException("upload: %s is not a directory" % src_dir)
        done = []
        base = self._dest(target_path)
        for root, dirs, files in os.walk(src_dir):
            dirs.sort()
            for f in sorted(files):
                full = os.path.join(root, f)
                self._copy(full, os.path.join(base, os.path.relpath(full, src_dir)), overwrite,
                           show_progress, done)
        if show_progress:
            print("Uploaded %d files" % len(done))
        return DataReference(self, target_path)

    def download(self, target_path, prefix=None, overwrite=False, show_progress=True):
        done = []
        for root, dirs, files in os.walk(self.local_path):
            for f in sorted(files):
                full = os.path.join(root, f)
                rel = os.path.relpath(full, self.local_path).replace(os.sep, "/")
                if prefix and not rel.startswith(prefix):
                    continue
                dest = os.path.join(target_path, rel)
                if os.path.exists(dest) and not overwrite:
                    continue
                os.makedirs(os.path.dirname(dest), exist_ok=True)
                shutil.copyfile(full, dest)
                done.append(dest)
        return len(done)

    def path(self, path=None, data_reference_name=None):
        return DataReference(self, path, data_reference_name)

    def as_mount(self):
        return DataReference(self, None).as_mount()

    def as_download(self, path_on_compute=None):
        return DataReference(self, None).as_download(path_on_compute)


class DataReference:
    """datastore.path('dir/'): a directory of the datastore, as a run's
    input with as_mount() / as_download() (ScriptRunConfig arguments)."""

    def __init__(self, datastore, path_on_datastore=None, data_reference_name=None, mode="mount"):
        self.datastore = datastore
        self.path_on_datastore = path_on_datastore
        self.data_reference_name = data_reference_name or "".join(
            c if c.isalnum() or c == "_" else "_" for c in datastore.name)
        self.mode = mode

    def as_mount(self):
        return DataReference(self.datastore, self.path_on_datastore, self.data_reference_name,
                             "mount")

    def as_download(self, path_on_compute=None, overwrite=False):
        return DataReference(self.datastore, self.path_on_datastore, self.data_reference_name,
                             "download")

    def _runyard_input(self):
        return {"name": self.data_reference_name,
                "source": self.datastore._dest(self.path_on_datastore), "mode": self.mode}

    def __str__(self):
        return "$AZUREML_DATAREFERENCE_%s" % self.data_reference_name

    def __repr__(self):
        return "DataReference(datastore=%r, path=%r)" % (self.datastore.name,
                                                          self.path_on_datastore)


def _register(workspace, name, kind, account, container, overwrite):
    from runyard._models import _as_workspace
    ws = _as_workspace(workspace)
    for what, v in (("datastore_name", name), ("account_name", account),
                    ("container_name", container)):
        if not isinstance(v, str) or not v or "/" in v or v in (".", ".."):
            raise UserErrorException("%s must be a name without '/', not %r" % (what, v))
    mine = _load("sdk-datastores.json", ws)[1]
    if name in mine and not overwrite:
        return Datastore(ws, name)
    mine[name] = {"type": kind, "account_name": account, "container_name": container,
                  "path": os.path.join(datastore_root(), account, container)}
    _save("sdk-datastores.json", ws, mine)
    return Datastore(ws, name)


def _datastores(ws):
    mine = dict(_load("sdk-datastores.json", ws)[1])
    mine.setdefault(DEFAULT_DATASTORE, {"type": "AzureBlob", "account_name": "local",
                                        "container_name": DEFAULT_DATASTORE,
                                        "path": os.path.join(datastore_root(),
                                                             DEFAULT_DATASTORE)})
    return mine


def get_default_datastore(ws):
    mine = _load("sdk-datastores.json", ws)[1]
    return Datastore(ws, mine.get("_default_", {}).get("name") or DEFAULT_DATASTORE)


def set_default_datastore(ws, name):
    Datastore(ws, name)
    mine = _load("sdk-datastores.json", ws)[1]
    mine["_default_"] = {"name": name, "path": ""}
    _save("sdk-datastores.json", ws, mine)


def datastores(ws):
    return {n: Datastore(ws, n, _doc=d) for n, d in _datastores(ws).items() if n != "_default_"}


# -- tabular datasets --------------------------------------------------------------------


def expand_paths(path):
    """from_delimited_files(path=...): a path, a glob, a (datastore, path)
    tuple or a list of them, as the absolute paths of the files."""
    items = path if isinstance(path, list) or (isinstance(path, tuple) and len(path) == 2 and
                                               isinstance(path[0], tuple)) else [path]
    out = []
    for p in items:
        if isinstance(p, DataReference):
            p = (p.datastore, p.path_on_datastore or "")
        if isinstance(p, tuple):
            ds, rel = p
            base = getattr(ds, "_runyard_dir", None) or str(ds)
            p = os.path.join(base, (rel or "").lstrip("/"))
        p = os.fspath(p)
        if "://" in p:
            if not p.startswith(("http://", "https://")):
                raise UserErrorException("from_delimited_files: only http:// and https:// "
                                         "URLs are read, not %s" % p)
            out.append(p)      # read by pandas; registered, downloaded by the daemon
            continue
        p = os.path.abspath(p)
        if os.path.isdir(p):
            found = _files_under(p)
        else:
            found = sorted(f for f in glob.glob(p, recursive=True) if os.path.isfile(f))
        if not found:
            raise UserErrorException("from_delimited_files: no files at %s" % p)
        out += found
    return out


def _files_under(d):
    out = []
    for root, dirs, files in os.walk(d):
        dirs.sort()
        out += [os.path.join(root, f) for f in sorted(files) if not f.startswith(".")]
    return out


class TabularDataset:
    """Rows of delimited files: take(n), skip(n), keep_columns,
    drop_columns, to_pandas_dataframe(), register(ws, name)."""

    def __init__(self, files, separator=",", header=True, name=None, version=None,
                 workspace=None, info=None, _ops=None, description=None):
        self._files = list(files)
        self.separator = separator
        self.header = header
        self.name = name
        self.version = version
        self._workspace = workspace
        self._info = info or {}
        self._ops = list(_ops or [])
        self._description = description

    def __repr__(self):
        if self.name:
            return "TabularDataset(name=%r, version=%r)" % (self.name, self.version)
        return "TabularDataset(files=%r)" % (self._files[:5],)

    def _with(self, op):
        return TabularDataset(self._files, self.separator, self.header, self.name, self.version,
                              self._workspace, self._info, self._ops + [op], self._description)

    @property
    def id(self):
        return self._info.get("manifest")

    @property
    def description(self):
        return self._info.get("description", self._description)

    def take(self, count):
        return self._with(("take", int(count)))

    def skip(self, count):
        return self._with(("skip", int(count)))

    def keep_columns(self, columns, validate=False):
        return self._with(("keep", [columns] if isinstance(columns, str) else list(columns)))

    def drop_columns(self, columns):
        return self._with(("drop", [columns] if isinstance(columns, str) else list(columns)))

    def random_split(self, percentage, seed=None):
        raise NotImplementedError("TabularDataset.random_split is not supported by runyard; "
                                  "split the dataframe of to_pandas_dataframe() instead")

    def get_profile(self, *args, **kwargs):
        raise NotImplementedError("TabularDataset.get_profile is not supported by runyard")

    def to_pandas_dataframe(self, on_error="null", out_of_range_datetime="null"):
        try:
            import pandas as pd
        except ImportError:
            raise UserErrorException("to_pandas_dataframe needs pandas (Debian's "
                                     "python3-pandas) in this interpreter") from None
        header = 0 if self.header in (True, "all_files_same_headers", "ALL_FILES_HAVE_SAME_HEADERS",
                                      "from_first_file") else None
        frames = [pd.read_csv(f, sep=self.separator, header=header) for f in self._files
                  if not os.path.basename(f).startswith(".")]
        if not frames:
            return pd.DataFrame()
        df = pd.concat(frames, ignore_index=True) if len(frames) > 1 else frames[0]
        for op, arg in self._ops:
            if op == "take":
                df = df.head(arg)
            elif op == "skip":
                df = df.iloc[arg:]
            elif op == "keep":
                df = df[arg]
            elif op == "drop":
                df = df.drop(columns=arg)
        return df.reset_index(drop=True)

    def to_csv_files(self, *args, **kwargs):
        raise NotImplementedError("TabularDataset.to_csv_files is not supported by runyard")

    def register(self, workspace, name, description=None, tags=None, create_new_version=False):
        """Register the files as a new version of dataset name (the daemon's
        file dataset; the SDK keeps how to parse them)."""
        from runyard._models import _as_workspace
        from runyard._run import DaemonError
        ws = _as_workspace(workspace)
        if self._ops:
            raise UserErrorException("register a dataset before take/skip/keep_columns: "
                                     "runyard registers the files as they are")
        args = {"name": name, "sources": self._files}
        if description is not None:
            args["description"] = description
        try:
            info = ws._call("dataset.register", args, timeout=None)
        except DaemonError as e:
            raise UserErrorException(str(e)) from e
        mine = _load("sdk-datasets.json", ws)[1]
        mine["%s:%s" % (info["name"], info["version"])] = {"separator": self.separator,
                                                           "header": bool(self.header)}
        _save("sdk-datasets.json", ws, mine)
        return tabular_from_json(ws, info)

    def as_named_input(self, name):
        return TabularConsumption(name, self)

    def _source(self):
        if self.name:
            return "dataset:%s:%d" % (self.name, self.version)
        if len(self._files) == 1:
            return self._files[0]
        dirs = {os.path.dirname(f) for f in self._files}
        if len(dirs) == 1 and sorted(self._files) == _files_under(dirs.pop()):
            return os.path.dirname(self._files[0])
        raise UserErrorException("a tabular dataset of several files must be registered "
                                 "(ds.register(ws, name)) before a run consumes it")


def tabular_info(ws, name, version):
    """How to parse a registered version, or None when it is not tabular."""
    return _load("sdk-datasets.json", ws)[1].get("%s:%s" % (name, version))


def _local_files(ws, info):
    """Files to read a registered version from: its sources when they are
    still there as they were registered, else a download of the version."""
    srcs = list(info.get("sources") or [])
    files = []
    for s in srcs:
        if "://" in s or not os.path.exists(s):
            files = None
            break
        files += _files_under(s) if os.path.isdir(s) else [s]
    if files is not None and len(files) == info.get("files", len(files)):
        return files
    import tempfile
    d = tempfile.mkdtemp(prefix="runyard-dataset-")
    ws._call("dataset.download", {"dataset": "%s:%s" % (info["name"], info["version"]),
                                  "dir": d}, timeout=None)
    return _files_under(d)


def tabular_from_json(ws, info):
    parse = tabular_info(ws, info["name"], info["version"]) or {}
    files = _local_files(ws, info)
    return TabularDataset(files, parse.get("separator", ","), parse.get("header", True),
                          info["name"], int(info["version"]), ws, info)


def _consumption_base():
    from azureml.core.dataset import DatasetConsumptionConfig
    return DatasetConsumptionConfig


class TabularConsumption:
    """as_named_input(name) of a tabular dataset: the run gets a copy of the
    files and run.input_datasets[name] is a TabularDataset of them."""

    def __init__(self, name, dataset):
        base = _consumption_base()
        self._c = base(name, dataset, "download")
        self.name = self._c.name
        self.dataset = dataset
        self.mode = "download"

    def _runyard_input(self):
        d = {"name": self.name, "source": self.dataset._source(), "mode": "copy"}
        d["_tabular"] = {"separator": self.dataset.separator,
                         "header": bool(self.dataset.header)}
        return d

    def as_download(self, path_on_compute=None):
        return self

    def as_mount(self, path_on_compute=None):
        return self

    def __str__(self):
        return "inputs/" + self.name


def run_input(name, path):
    """What run.input_datasets[name] is inside a run: a TabularDataset for
    a tabular input, else the input's path."""
    spec = os.environ.get(TABULAR_PREFIX + name)
    if not spec:
        return path
    try:
        parse = json.loads(spec)
    except ValueError:
        parse = {}
    files = _files_under(path) if os.path.isdir(path) else [path]
    return TabularDataset(files, parse.get("separator", ","), parse.get("header", True),
                          name=None)
