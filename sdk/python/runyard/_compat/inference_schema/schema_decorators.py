"""@input_schema(name, type) and @output_schema(type) on run()."""

import functools

from .schema_util import SCHEMA_ATTR, _schema_of


def _wrap(func):
    """The function that carries the schema: a wrapper that converts the
    decorated parameters, with the original's signature (inspect follows
    __wrapped__), made once however many decorations are stacked."""
    if getattr(func, SCHEMA_ATTR, None) is not None and getattr(func, "_ry_wrapper", False):
        return func
    inner = func
    schema = {"inputs": {}, "convert": {}, "output": None}

    @functools.wraps(inner)
    def wrapper(*args, **kwargs):
        for name, ptype in schema["inputs"].items():
            if name in kwargs and schema["convert"][name]:
                kwargs[name] = ptype.deserialize_input(kwargs[name])
        return inner(*args, **kwargs)

    old = _schema_of(inner)
    if old:
        schema["inputs"].update(old["inputs"])
        schema["convert"].update(old["convert"])
        schema["output"] = old["output"]
    setattr(wrapper, SCHEMA_ATTR, schema)
    wrapper._ry_wrapper = True
    return wrapper


def input_schema(param_name, param_type, convert_to_provided_type=True, optional=False):
    def decorate(func):
        w = _wrap(func)
        schema = getattr(w, SCHEMA_ATTR)
        # The outermost decoration is the first parameter: keep the order of
        # the source, top to bottom.
        schema["inputs"] = {param_name: param_type, **schema["inputs"]}
        schema["convert"][param_name] = convert_to_provided_type
        return w
    return decorate


def output_schema(output_type):
    def decorate(func):
        w = _wrap(func)
        getattr(w, SCHEMA_ATTR)["output"] = output_type
        return w
    return decorate
