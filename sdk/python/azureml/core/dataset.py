"""azureml.core.dataset: file datasets against the local runyardd (docs/inputs.md).

    from azureml.core import Dataset, Workspace
    ws = Workspace.from_config()
    ds = Dataset.File.from_files(path="data/")          # files, directories or URLs
    ds = ds.register(ws, "iris", description="the iris data")
    ds = Dataset.get_by_name(ws, "iris")                 # the latest version
    src = ScriptRunConfig(..., arguments=["--data", ds.as_named_input("iris").as_mount()])

A registered dataset is runyardd's `dataset:NAME:VERSION`; an unregistered
one (from_files, not registered) names its local paths. as_mount() gives a
read-only view in the run (`mount`), as_download() a copy of the files
(`download`). The consumption object's _runyard_input() is what
ScriptRunConfig sends in run.submit's "inputs"; inside the run the data is
at inputs/NAME and in $RUNYARD_INPUT_NAME.

Pure standard library.
"""

import os
import re

from runyard._data import TabularDataset, expand_paths, tabular_from_json, tabular_info
from runyard._models import _as_workspace
from runyard._run import DaemonError, UserErrorException

__all__ = ["Dataset", "FileDataset", "TabularDataset", "DatasetConsumptionConfig",
           "UserErrorException"]

_INPUT_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_]{0,63}$")


def _sources(path):
    """from_files(path=...): a path, a URL, a (datastore, path) tuple or a
    list of them, as absolute paths and URLs."""
    items = path if isinstance(path, (list, tuple)) and not (
        len(path) == 2 and not isinstance(path[0], str)) else [path]
    out = []
    for p in items:
        if hasattr(p, "datastore") and hasattr(p, "path_on_datastore"):  # datastore.path(...)
            p = (p.datastore, p.path_on_datastore or "")
        if isinstance(p, tuple):  # (datastore, relative path): the datastore is a directory
            base = getattr(p[0], "_runyard_dir", None) or getattr(p[0], "path", None) or str(p[0])
            p = os.path.join(base, p[1].lstrip("/"))
        p = os.fspath(p)
        if "://" not in p:
            p = os.path.abspath(p)
        out.append(p)
    if not out:
        raise UserErrorException("from_files needs at least one path")
    return out


class DatasetConsumptionConfig:
    """How a run consumes a dataset: as_named_input(name).as_mount() /
    .as_download(). ScriptRunConfig replaces it in arguments with the path
    the script sees, inputs/NAME."""

    def __init__(self, name, dataset, mode="mount", path_on_compute=None):
        if not isinstance(name, str) or not _INPUT_NAME.match(name):
            raise UserErrorException(
                "input name %r is not valid: letters, digits and '_', not starting with a "
                "digit, at most 64 characters" % (name,))
        self.name = name
        self.dataset = dataset
        self.mode = mode
        self.path_on_compute = path_on_compute

    def as_mount(self, path_on_compute=None):
        return DatasetConsumptionConfig(self.name, self.dataset, "mount", path_on_compute)

    def as_download(self, path_on_compute=None):
        return DatasetConsumptionConfig(self.name, self.dataset, "download", path_on_compute)

    @property
    def path(self):
        """Where the script sees the data, relative to its working directory."""
        return self.path_on_compute or "inputs/" + self.name

    def _runyard_input(self):
        """One entry of run.submit's "inputs"."""
        d = {"name": self.name, "source": self.dataset._source(), "mode": self.mode}
        if self.path_on_compute:
            d["path"] = self.path_on_compute
        return d

    def __str__(self):
        return self.path

    def __repr__(self):
        return "DatasetConsumptionConfig(name=%r, mode=%r, dataset=%r)" % (
            self.name, self.mode, self.dataset)


class FileDataset:
    """A file dataset: registered (name and version) or local paths only."""

    def __init__(self, sources=None, name=None, version=None, workspace=None, info=None):
        self._paths = list(sources or [])
        self.name = name
        self.version = version
        self._workspace = workspace
        self._info = info or {}

    # -- what the cloud SDK offers ----------------------------------------------

    @property
    def id(self):
        return self._info.get("manifest")

    @property
    def description(self):
        return self._info.get("description")

    def register(self, workspace, name, description=None, tags=None, create_new_version=False):
        """Register the files as a new version of dataset name. Every
        registration makes a new version (runyard pins contents by hash),
        create_new_version or not."""
        ws = _as_workspace(workspace)
        args = {"name": name, "sources": self._paths or [self._source()]}
        if description is not None:
            args["description"] = description
        try:
            info = ws._call("dataset.register", args, timeout=None)
        except DaemonError as e:
            raise UserErrorException(str(e)) from e
        return FileDataset._from_json(ws, info)

    def as_named_input(self, name):
        return DatasetConsumptionConfig(name, self)

    def as_mount(self, path_on_compute=None):
        return self.as_named_input(self._default_input_name()).as_mount(path_on_compute)

    def as_download(self, path_on_compute=None):
        return self.as_named_input(self._default_input_name()).as_download(path_on_compute)

    def download(self, target_path=None, overwrite=False):
        """Write a registered version's files into target_path (a new or
        empty directory); the list of files written."""
        if not self.name:
            raise UserErrorException("only a registered dataset can be downloaded")
        target = os.path.abspath(target_path or ".")
        ws = self._workspace or _as_workspace(None)
        try:
            ws._call("dataset.download", {"dataset": self._ref(), "dir": target},
                     timeout=None)
        except DaemonError as e:
            raise UserErrorException(str(e)) from e
        return [os.path.join(target, f["path"]) for f in self._file_list(ws)]

    def to_path(self):
        if not self.name:
            return [os.path.basename(p) for p in self._paths]
        return ["/" + f["path"] for f in self._file_list(self._workspace or _as_workspace(None))]

    # -- runyard's ---------------------------------------------------------------

    def _default_input_name(self):
        base = re.sub(r"[^A-Za-z0-9_]", "_", self.name or "input")
        return base if _INPUT_NAME.match(base) else "input"

    def _ref(self):
        return "%s:%d" % (self.name, self.version)

    def _source(self):
        if self.name:
            return "dataset:" + self._ref()
        if len(self._paths) != 1 or "://" in self._paths[0]:
            raise UserErrorException(
                "a dataset of several paths or of URLs must be registered before a run "
                "consumes it")
        return self._paths[0]

    def _file_list(self, ws):
        return ws._call("dataset.show", {"dataset": self._ref()}).get("file_list", [])

    @classmethod
    def _from_json(cls, ws, info):
        return cls(info.get("sources"), info["name"], int(info["version"]), ws, info)

    def __repr__(self):
        if self.name:
            return "FileDataset(name=%r, version=%r)" % (self.name, self.version)
        return "FileDataset(paths=%r)" % (self._paths,)


class _FileFactory:
    @staticmethod
    def from_files(path, validate=True, partition_format=None, is_file=False):
        paths = _sources(path)
        if validate:
            for p in paths:
                if "://" not in p and not os.path.exists(p):
                    raise UserErrorException("no such file or directory: %s" % p)
        return FileDataset(paths)


class _TabularFactory:
    @staticmethod
    def from_delimited_files(path, validate=True, include_path=False, infer_column_types=True,
                             set_column_types=None, separator=",", header=True,
                             partition_format=None, support_multi_line=False,
                             empty_as_string=False, encoding="utf8"):
        """Rows of CSV (or separator-delimited) files: path a file, a
        directory, a glob, a (datastore, 'path') tuple or a list of them."""
        if include_path or set_column_types or partition_format:
            raise NotImplementedError("from_delimited_files: include_path, set_column_types "
                                      "and partition_format are not supported by runyard")
        return TabularDataset(expand_paths(path), separator, header)

    @staticmethod
    def from_parquet_files(*args, **kwargs):
        raise NotImplementedError("Dataset.Tabular.from_parquet_files is not supported by "
                                  "runyard; use from_delimited_files")

    @staticmethod
    def from_json_lines_files(*args, **kwargs):
        raise NotImplementedError("Dataset.Tabular.from_json_lines_files is not supported by "
                                  "runyard; use from_delimited_files")

    @staticmethod
    def from_sql_query(*args, **kwargs):
        raise NotImplementedError("Dataset.Tabular.from_sql_query is not supported by runyard")


class Dataset:
    """The cloud SDK's entry point: Dataset.File.from_files(...),
    Dataset.Tabular.from_delimited_files(...), Dataset.get_by_name(ws, name,
    version="latest")."""

    File = _FileFactory
    Tabular = _TabularFactory

    @staticmethod
    def get_by_name(workspace, name, version="latest"):
        ws = _as_workspace(workspace)
        ref = name if version in (None, "latest") else "%s:%d" % (name, int(version))
        try:
            info = ws._call("dataset.show", {"dataset": ref})
        except DaemonError as e:
            raise UserErrorException(str(e)) from e
        if tabular_info(ws, info["name"], info["version"]) is not None:
            return tabular_from_json(ws, info)
        return FileDataset._from_json(ws, info)

    @staticmethod
    def get_all(workspace):
        ws = _as_workspace(workspace)
        out = {}
        for d in ws._call("dataset.list").get("datasets", []):
            if tabular_info(ws, d["name"], d["version"]) is not None:
                out[d["name"]] = Dataset.get_by_name(ws, d["name"], d["version"])
            else:
                out[d["name"]] = FileDataset._from_json(ws, d)
        return out
