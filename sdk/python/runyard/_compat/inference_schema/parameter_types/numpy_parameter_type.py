from .abstract_parameter_type import AbstractParameterType

_KINDS = {"b": ("boolean", None), "i": ("integer", "int64"), "u": ("integer", "int64"),
          "f": ("number", "double"), "U": ("string", None), "S": ("string", None),
          "O": ("object", None)}


class NumpyParameterType(AbstractParameterType):
    """A NumPy array: the request's nested lists become an array of the
    sample's dtype (enforce_column_type) whose shape past the first axis is
    the sample's (enforce_shape); otherwise a ValueError, run()'s failure."""

    def __init__(self, sample_input, enforce_column_type=True, enforce_shape=True):
        super().__init__(sample_input)
        self.enforce_column_type = enforce_column_type
        self.enforce_shape = enforce_shape

    def deserialize_input(self, input_data):
        import numpy as np
        dtype = self.sample_input.dtype if self.enforce_column_type else None
        array = np.array(input_data, dtype=dtype)
        if self.enforce_shape and array.shape[1:] != self.sample_input.shape[1:]:
            raise ValueError("the input's shape %s does not match the sample's %s past its "
                             "first dimension" % (array.shape, self.sample_input.shape))
        return array

    def input_to_swagger(self):
        kind, fmt = _KINDS.get(self.sample_input.dtype.kind, ("object", None))
        item = {"type": kind}
        if fmt:
            item["format"] = fmt
        for _ in range(self.sample_input.ndim):
            item = {"type": "array", "items": item}
        item["example"] = self.sample_input.tolist()
        return item
