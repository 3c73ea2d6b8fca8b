class AbstractParameterType:
    """A parameter's sample, how a request's value becomes its type, and its
    JSON schema."""

    def __init__(self, sample_input):
        self.sample_input = sample_input

    def deserialize_input(self, input_data):
        return input_data

    def input_to_swagger(self):
        return {"type": "object", "example": self.sample_input}
