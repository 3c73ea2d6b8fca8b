from .abstract_parameter_type import AbstractParameterType
from .numpy_parameter_type import _KINDS


class PandasParameterType(AbstractParameterType):
    """A pandas DataFrame, sent as records (orient="records", the default)
    or in another orient of DataFrame.to_dict; columns take the sample's
    dtypes (enforce_column_type)."""

    def __init__(self, sample_input, enforce_column_type=True, enforce_shape=True,
                 apply_column_names=False, orient="records"):
        super().__init__(sample_input)
        self.enforce_column_type = enforce_column_type
        self.enforce_shape = enforce_shape
        self.apply_column_names = apply_column_names
        self.orient = orient

    def deserialize_input(self, input_data):
        import pandas as pd
        if self.orient == "records":
            frame = pd.DataFrame.from_records(input_data)
        elif self.orient == "split":
            frame = pd.DataFrame(input_data["data"], columns=input_data.get("columns"),
                                 index=input_data.get("index"))
        else:
            frame = pd.DataFrame.from_dict(input_data, orient="index" if
                                           self.orient == "index" else "columns")
        if self.apply_column_names and len(frame.columns) == len(self.sample_input.columns):
            frame.columns = self.sample_input.columns
        if self.enforce_shape and len(frame.columns) != len(self.sample_input.columns):
            raise ValueError("the input has %d columns, the sample %d"
                             % (len(frame.columns), len(self.sample_input.columns)))
        if self.enforce_column_type:
            frame = frame.astype({c: t for c, t in self.sample_input.dtypes.items()
                                  if c in frame.columns})
        return frame

    def input_to_swagger(self):
        props = {}
        for c, t in self.sample_input.dtypes.items():
            kind, fmt = _KINDS.get(t.kind, ("object", None))
            props[str(c)] = {"type": kind, **({"format": fmt} if fmt else {})}
        records = self.sample_input.to_dict(orient="records")
        return {"type": "array", "items": {"type": "object", "required": list(props),
                                           "properties": props},
                "example": records}
