"""@rawhttp, AMLRequest and AMLResponse for entry scripts, as Azure ML's
inference server offers them (docs/models.md, "Entry scripts")."""
