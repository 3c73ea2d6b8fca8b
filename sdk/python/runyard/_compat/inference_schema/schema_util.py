"""What a server asks of a decorated run(): is it decorated, and its
input and output schemas (JSON schema, with examples)."""

SCHEMA_ATTR = "_ry_inference_schema"


def _schema_of(func):
    while func is not None:
        s = getattr(func, SCHEMA_ATTR, None)
        if s is not None:
            return s
        func = getattr(func, "__wrapped__", None)
    return None


def is_schema_decorated(func):
    return _schema_of(func) is not None


def get_input_schema(func):
    s = _schema_of(func)
    if not s or not s["inputs"]:
        return {}
    props = {n: t.input_to_swagger() for n, t in s["inputs"].items()}
    return {"type": "object", "properties": props,
            "example": {n: p.get("example") for n, p in props.items()}}


def get_output_schema(func):
    s = _schema_of(func)
    if not s or s["output"] is None:
        return {}
    return s["output"].input_to_swagger()


def get_supported_versions(func):
    return ["2.0", "3.0", "3.1"] if is_schema_decorated(func) else []
