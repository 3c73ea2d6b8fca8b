"""CondaDependencies: a conda specification built in code (docs/sdk.md).

    from azureml.core.conda_dependencies import CondaDependencies
    cd = CondaDependencies.create(conda_packages=['scikit-learn'], pip_packages=['joblib'])
    env.python.conda_dependencies = cd

serialize_to_string() is the YAML the environment is made from (env.create
with conda_yaml); runyardd builds it with conda when one is installed, else
as a venv over the system's site-packages (docs/environments.md). Packages
named azureml-* are satisfied by runyard's own module.

Pure standard library (PyYAML is used to read a file when it is there).
"""

import os
import re
import sys

from runyard._run import UserErrorException

DEFAULT_CHANNELS = ["anaconda", "conda-forge"]
SDK_PACKAGE = "azureml-defaults"


def _name(spec):
    """The package name of a requirement ('numpy>=1.2' -> 'numpy')."""
    return re.split(r"[=<>!~\[ ;]", spec.strip(), maxsplit=1)[0].lower()


def _check(spec, what):
    if not isinstance(spec, str) or not spec.strip() or "\n" in spec:
        raise UserErrorException("%s: a package must be a one-line string, not %r" % (what, spec))
    return spec.strip()


class CondaDependencies:
    """A conda specification: python version, conda packages, pip packages
    and channels. CondaDependencies(path) reads a YAML file."""

    def __init__(self, conda_dependencies_file_path=None, _underlying_structure=None):
        self.name = "project_environment"
        self._python = None
        self._conda = []
        self._pip = []
        self._pip_options = []
        self._channels = []
        if conda_dependencies_file_path is not None:
            try:
                with open(conda_dependencies_file_path, encoding="utf-8") as f:
                    text = f.read()
            except OSError as e:
                raise UserErrorException("CondaDependencies: cannot read %s: %s"
                                         % (conda_dependencies_file_path, e.strerror)) from None
            self._load(_parse_yaml(text, conda_dependencies_file_path))
        elif _underlying_structure is not None:
            self._load(_underlying_structure)
        else:
            self._python = "%d.%d" % sys.version_info[:2]
            self._channels = list(DEFAULT_CHANNELS)

    def _load(self, doc):
        if not isinstance(doc, dict):
            raise UserErrorException("CondaDependencies: the specification is not a mapping")
        self.name = str(doc.get("name") or self.name)
        self._channels = [str(c) for c in (doc.get("channels") or [])]
        for dep in doc.get("dependencies") or []:
            if isinstance(dep, dict) and "pip" in dep:
                for p in dep.get("pip") or []:
                    p = str(p)
                    (self._pip_options if p.startswith("-") else self._pip).append(p)
            elif isinstance(dep, str):
                if _name(dep) == "python":
                    self._python = dep.strip()[len("python"):].lstrip("=") or None
                else:
                    self._conda.append(dep.strip())

    # -- the cloud SDK's API ------------------------------------------------------

    @staticmethod
    def create(pip_packages=None, conda_packages=None, python_version=None,
               pin_sdk_version=True, pip_indexurl=None):
        """A specification with these packages; the pip packages get
        azureml-defaults as the cloud's does (satisfied by runyard's module)."""
        cd = CondaDependencies()
        if python_version is not None:
            cd.set_python_version(python_version)
        for p in conda_packages or []:
            cd.add_conda_package(p)
        if SDK_PACKAGE not in [_name(p) for p in pip_packages or []]:
            cd.add_pip_package(SDK_PACKAGE)
        for p in pip_packages or []:
            cd.add_pip_package(p)
        if pip_indexurl:
            cd.set_pip_option("--index-url %s" % pip_indexurl)
        return cd

    @staticmethod
    def merge_requirements(requirements):
        return list(dict.fromkeys(requirements))

    def set_python_version(self, version):
        if not re.match(r"^\d+(\.\d+){0,2}$", str(version)):
            raise UserErrorException("set_python_version: %r is not a version such as '3.11'"
                                     % (version,))
        self._python = str(version)

    def get_python_version(self):
        return self._python

    def add_conda_package(self, conda_package):
        spec = _check(conda_package, "add_conda_package")
        self._conda = [p for p in self._conda if _name(p) != _name(spec)] + [spec]

    def add_pip_package(self, pip_package):
        spec = _check(pip_package, "add_pip_package")
        self._pip = [p for p in self._pip if _name(p) != _name(spec)] + [spec]

    def add_channel(self, channel):
        channel = _check(channel, "add_channel")
        if channel not in self._channels:
            self._channels.append(channel)

    def remove_conda_package(self, conda_package):
        self._conda = [p for p in self._conda if _name(p) != _name(conda_package)]

    def remove_pip_package(self, pip_package):
        self._pip = [p for p in self._pip if _name(p) != _name(pip_package)]

    def remove_channel(self, channel):
        self._channels = [c for c in self._channels if c != channel]

    def set_pip_option(self, pip_option):
        opt = _check(pip_option, "set_pip_option")
        key = opt.split()[0]
        self._pip_options = [o for o in self._pip_options if o.split()[0] != key] + [opt]

    def add_tensorflow_conda_package(self, core_type="cpu", version=None):
        self.add_conda_package("tensorflow" + ("=" + version if version else ""))

    def add_tensorflow_pip_package(self, core_type="cpu", version=None):
        self.add_pip_package("tensorflow" + ("==" + version if version else ""))

    @property
    def conda_packages(self):
        return iter(list(self._conda))

    @property
    def pip_packages(self):
        return iter(list(self._pip))

    @property
    def conda_channels(self):
        return iter(list(self._channels))

    @property
    def pip_options(self):
        return iter(list(self._pip_options))

    def serialize_to_string(self):
        """The specification as conda's YAML."""
        out = ["# Conda environment specification. The dependencies defined in this file "
               "will", "# be used by runyard to build the run's environment.",
               "", "name: %s" % self.name, "dependencies:"]
        if self._python:
            out += ["  # The python interpreter version.", "- python=%s" % self._python]
        out += ["- %s" % p for p in self._conda]
        if self._pip or self._pip_options:
            out += ["- pip:"] + ["  - %s" % p for p in self._pip_options + self._pip]
        if self._channels:
            out += ["channels:"] + ["- %s" % c for c in self._channels]
        return "\n".join(out) + "\n"

    def save(self, path=None):
        """Write serialize_to_string() to path (default:
        ./conda_dependencies.yml); returns the path."""
        path = path or "conda_dependencies.yml"
        if os.path.isdir(path):
            path = os.path.join(path, "conda_dependencies.yml")
        with open(path, "w", encoding="utf-8") as f:
            f.write(self.serialize_to_string())
        return path

    def save_to_file(self, base_directory, conda_file_path=None):
        return self.save(os.path.join(base_directory, conda_file_path or
                                      "conda_dependencies.yml"))

    def _as_dict(self):
        deps = (["python=%s" % self._python] if self._python else []) + list(self._conda)
        if self._pip or self._pip_options:
            deps.append({"pip": self._pip_options + self._pip})
        return {"name": self.name, "dependencies": deps, "channels": list(self._channels)}

    def __repr__(self):
        return "CondaDependencies(python=%r, conda=%r, pip=%r)" % (self._python, self._conda,
                                                                   self._pip)

    def __eq__(self, other):
        return isinstance(other, CondaDependencies) and \
            self.serialize_to_string() == other.serialize_to_string()


def _parse_yaml(text, where):
    try:
        import yaml
    except ImportError:
        return _parse_simple(text, where)
    try:
        return yaml.safe_load(text)
    except yaml.YAMLError as e:
        raise UserErrorException("CondaDependencies: %s is not valid YAML: %s" % (where, e)) \
            from None


def _parse_simple(text, where):
    """The usual shape of a conda file (name, channels, dependencies with a
    pip list), without PyYAML."""
    doc, key, pip = {}, None, None
    for raw in text.splitlines():
        line = raw.split("#", 1)[0].rstrip()
        if not line.strip():
            continue
        indent = len(line) - len(line.lstrip())
        s = line.strip()
        if not s.startswith("-") and s.endswith(":") and indent == 0:
            key, pip = s[:-1], None
            doc[key] = []
        elif not s.startswith("-") and ":" in s and indent == 0:
            k, v = s.split(":", 1)
            doc[k.strip()] = v.strip()
            key = None
        elif s.startswith("-") and key is not None:
            item = s[1:].strip()
            if item == "pip:":
                pip = []
                doc[key].append({"pip": pip})
            elif pip is not None and indent > 2:
                pip.append(item)
            else:
                pip = None
                doc[key].append(item)
        else:
            raise UserErrorException("CondaDependencies: cannot read line %r of %s without "
                                     "PyYAML" % (raw, where))
    return doc
