"""azureml.core.model: Model and InferenceConfig on top of runyard's registry.

    from azureml.core import Model
    model = Model.register(ws, model_path="model.joblib", model_name="sklearn-iris",
                           model_framework=Model.Framework.SCIKITLEARN)
    service = Model.deploy(ws, "scikit-learn-service", [model])

See docs/models.md."""

from runyard._models import InferenceConfig, Model

__all__ = ["Model", "InferenceConfig"]
