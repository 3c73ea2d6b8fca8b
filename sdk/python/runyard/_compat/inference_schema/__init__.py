"""A small stand-in for the inference-schema package (Azure ML's
@input_schema and @output_schema decorations of an entry script's run()),
for interpreters that do not have it: runyard's scoring server puts this
folder at the end of sys.path, so an installed inference-schema wins.

It covers what scoring scripts use: the two decorators, the standard Python,
NumPy and pandas parameter types (converting the request's values to the
sample's type, checking a NumPy row's shape) and the schemas of the swagger
document (schema_util). See docs/models.md."""
