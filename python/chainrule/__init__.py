"""chainrule: multi-layer perceptrons trained by backpropagation, on a C++ engine.

- MLPClassifier, MLPRegressor: scikit-learn estimators (drop-ins for sklearn.neural_network's).
- load(path): the estimator for a model file written by `chainrule train` or save(path).
- train(data, target=..., **options), evaluate, predict, explain: the command line's pipeline
  (chainrule train, eval, predict, explain) on a CSV path or a pandas DataFrame, returning a
  Model; load_model(path) reads any model file as a Model.
- Network, SGD, Adam, RMSprop: the low-level engine (flat params/grads as numpy views),
  with Network.explain(x, y): every gradient as a product of chain-rule factors.
- Error (a ValueError) and its subclasses ConfigError, DataError, DivergenceError, ModelError,
  LimitError: what the engine raises; each has `option`, the option that changes the outcome.

docs/python.md is the guide.
"""

from ._core import (
    Adam,
    ConfigError,
    DataError,
    DivergenceError,
    Error,
    LimitError,
    Model,
    ModelError,
    Network,
    Optimizer,
    RMSprop,
    SGD,
    bf16_available,
)
from .estimators import MLPClassifier, MLPRegressor, load
from .pipeline import (evaluate, explain, export_onnx, load_model, mpi_rank, mpi_size, predict,
                       train)

__version__ = "0.1.0"

__all__ = [
    "MLPClassifier", "MLPRegressor", "load", "train", "evaluate", "predict", "explain",
    "load_model", "export_onnx", "Network", "Model", "Optimizer", "SGD", "Adam",
    "RMSprop", "Error", "ConfigError", "DataError", "DivergenceError", "ModelError",
    "LimitError", "mpi_rank", "mpi_size", "bf16_available",
]
