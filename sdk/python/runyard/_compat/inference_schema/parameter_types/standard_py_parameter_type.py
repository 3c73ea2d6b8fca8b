from .abstract_parameter_type import AbstractParameterType


def _swagger(v):
    if isinstance(v, AbstractParameterType):
        return v.input_to_swagger()
    if isinstance(v, bool):
        return {"type": "boolean", "example": v}
    if isinstance(v, int):
        return {"type": "integer", "format": "int64", "example": v}
    if isinstance(v, float):
        return {"type": "number", "format": "double", "example": v}
    if isinstance(v, str):
        return {"type": "string", "example": v}
    if isinstance(v, (list, tuple)):
        out = {"type": "array", "items": _swagger(v[0]) if v else {}}
        out["example"] = [_example(x) for x in v]
        return out
    if isinstance(v, dict):
        return {"type": "object", "required": list(v),
                "properties": {str(k): _swagger(x) for k, x in v.items()},
                "example": {str(k): _example(x) for k, x in v.items()}}
    return {"type": "object"}


def _example(v):
    if isinstance(v, AbstractParameterType):
        return v.input_to_swagger().get("example")
    if isinstance(v, (list, tuple)):
        return [_example(x) for x in v]
    if isinstance(v, dict):
        return {str(k): _example(x) for k, x in v.items()}
    return v


class StandardPythonParameterType(AbstractParameterType):
    """A plain Python sample (numbers, text, lists, dicts); parameter types
    nested in a list or dict convert their part of the value."""

    def deserialize_input(self, input_data):
        s = self.sample_input
        if isinstance(s, AbstractParameterType):
            return s.deserialize_input(input_data)
        if isinstance(s, dict) and isinstance(input_data, dict):
            return {k: StandardPythonParameterType(s[k]).deserialize_input(v) if k in s else v
                    for k, v in input_data.items()}
        if isinstance(s, (list, tuple)) and s and isinstance(input_data, list):
            item = StandardPythonParameterType(s[0])
            return [item.deserialize_input(v) for v in input_data]
        if isinstance(s, float) and isinstance(input_data, int) and \
                not isinstance(input_data, bool):
            return float(input_data)
        return input_data

    def input_to_swagger(self):
        return _swagger(self.sample_input)
