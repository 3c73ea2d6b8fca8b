"""@rawhttp: run() gets the HTTP request itself (an AMLRequest) for every
method, instead of the body's text.

AMLRequest has the parts of Flask's request that scoring scripts use:
method, path, full_path, url, query_string, args (get, getlist), headers
(case-insensitive get), content_type, mimetype, is_json, data, get_data(),
json and get_json()."""

import json
import urllib.parse

_rawHttpRequested = False


def rawhttp(func):
    global _rawHttpRequested
    _rawHttpRequested = True
    return func


class _Headers:
    """Case-insensitive, named as Flask names them when listed."""

    def __init__(self, lower):
        self._h = lower

    def get(self, name, default=None, type=None):
        v = self._h.get(name.lower(), default)
        if type is not None and v is not default:
            try:
                return type(v)
            except ValueError:
                return default
        return v

    def __getitem__(self, name):
        return self._h[name.lower()]

    def __contains__(self, name):
        return name.lower() in self._h

    def __iter__(self):
        return iter(self.items())

    def __len__(self):
        return len(self._h)

    def keys(self):
        return [k.title() for k in self._h]

    def items(self):
        return [(k.title(), v) for k, v in self._h.items()]

    def to_wsgi_list(self):
        return self.items()


class _Args(dict):
    def __init__(self, query):
        pairs = urllib.parse.parse_qsl(query, keep_blank_values=True)
        self._lists = {}
        for k, v in pairs:
            self._lists.setdefault(k, []).append(v)
        super().__init__((k, v[0]) for k, v in self._lists.items())

    def getlist(self, key):
        return list(self._lists.get(key, []))


class AMLRequest:
    def __init__(self, method, target, headers, body, host="127.0.0.1"):
        self.method = method
        self.path, _, query = target.partition("?")
        self.query_string = query.encode("latin-1")
        self.full_path = self.path + "?" + query
        self.url = "http://%s%s" % (headers.get("host", host), target)
        self.headers = _Headers(headers)
        self.args = _Args(query)
        self.content_type = headers.get("content-type")
        self.mimetype = (self.content_type or "").split(";", 1)[0].strip().lower()
        self.data = body

    @property
    def is_json(self):
        m = self.mimetype
        return m == "application/json" or (m.startswith("application/") and m.endswith("+json"))

    def get_data(self, cache=True, as_text=False, parse_form_data=False):
        return self.data.decode("utf-8", "replace") if as_text else self.data

    def get_json(self, force=False, silent=False, cache=True):
        if not (force or self.is_json):
            if silent:
                return None
            raise ValueError("the request's Content-Type is not JSON")
        try:
            return json.loads(self.data)
        except ValueError:
            if silent:
                return None
            raise

    @property
    def json(self):
        return self.get_json(silent=True)
