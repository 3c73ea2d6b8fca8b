"""azureml.widgets: RunDetails(run).show() renders the run once: an HTML
table inside a Jupyter kernel, text elsewhere (status, duration, metrics,
children; a sweep's children with their primary metric). It never waits
for the run and never fails a notebook."""

from runyard._widgets import RunDetails

__all__ = ["RunDetails"]
