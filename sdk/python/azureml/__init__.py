"""runyard's stand-in for the azureml namespace (see azureml.core).

Other azureml.* packages installed in the interpreter stay importable: this
package extends its path with theirs."""

from pkgutil import extend_path

__path__ = extend_path(__path__, __name__)
