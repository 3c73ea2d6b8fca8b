# The seed walk-through ("Train scikit-learn models at scale"), cell by cell,
# against a local runyardd instead of a cloud workspace. Each cell is the
# seed's code block as written; see README.md for what differs and why.
#
#   runyard daemon start
#   cd examples/notebook && /usr/bin/python3 notebook.py
#
# PYTHONPATH must hold runyard's sdk/python (README.md); the daemon finds
# python3.X for the conda file's pin on its PATH.

# %% [markdown]
# ## Initialize a workspace
# A config.json with the cloud's fields may be here; runyard ignores them.

# %%
from azureml.core import Workspace

ws = Workspace.from_config()

# %% [markdown]
# ## Define your environment
# ### Use a curated environment

# %%
from azureml.core import Environment

sklearn_env = Environment.get(workspace=ws, name='AzureML-Tutorial')

# %% [markdown]
# ### Create a custom environment (conda_dependencies.yml is beside this file)

# %%
from azureml.core import Environment

sklearn_env = Environment.from_conda_specification(name='sklearn-env', file_path='conda_dependencies.yml')

# %% [markdown]
# ## Configure and submit your training run
# ### Create a ScriptRunConfig

# %%
from azureml.core import ScriptRunConfig

src = ScriptRunConfig(source_directory='.',
                      script='train_iris.py',
                      arguments=['--kernel', 'linear', '--penalty', 1.0],
                      environment=sklearn_env)

# %% [markdown]
# To run on a cluster instead, name a compute target ('runyard compute list';
# 'local' is always there). The seed writes ws.compute_targets['<my-cluster-name>'].

# %%
from azureml.core import ScriptRunConfig

compute_target = ws.compute_targets['local']
src = ScriptRunConfig(source_directory='.',
                      script='train_iris.py',
                      arguments=['--kernel', 'linear', '--penalty', 1.0],
                      compute_target=compute_target,
                      environment=sklearn_env)

# %% [markdown]
# ### Submit your run

# %%
from azureml.core import Experiment

run = Experiment(ws,'Tutorial-TrainIRIS').submit(src)
run.wait_for_completion(show_output=True)

# %% [markdown]
# ## Save and register the model
# train_iris.py saves outputs/model.joblib; register it from the run.

# %%
from azureml.core import Model
from azureml.core.resource_configuration import ResourceConfiguration

model = run.register_model(model_name='sklearn-iris', 
                           model_path='outputs/model.joblib',
                           model_framework=Model.Framework.SCIKITLEARN,
                           model_framework_version='0.19.1',
                           resource_configuration=ResourceConfiguration(cpu=1, memory_in_gb=0.5))

# %% [markdown]
# ## Deployment (no-code model deployment)

# %%
web_service = Model.deploy(ws, "scikit-learn-service", [model])

# %% [markdown]
# Not in the seed: wait for the service, score two rows, and remove it.

# %%
import json

web_service.wait_for_deployment(show_output=True)
print(run.get_metrics())
print(web_service.scoring_uri)
print(web_service.run(json.dumps({"data": [[5.1, 3.5, 1.4, 0.2], [6.7, 3.0, 5.2, 2.3]]})))
web_service.delete()
