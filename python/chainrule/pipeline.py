"""The command line's pipeline from Python: train, evaluate, predict, explain.

``chainrule.train(data, target=..., **options)`` does what ``chainrule train`` does on a CSV
file (a path, read by the library's CSV reader) or a pandas DataFrame: it drops columns, types
them, splits off the validation rows, standardizes numeric columns and one-hot encodes text ones
(fitted on the training rows), infers the task, trains with early stopping and returns the
`chainrule.Model`. The options are the library's names for the command line's flags, with the
same defaults (the cores available for ``threads``, as the command line's ``--threads``): the
same file, options and seed give the same model file, byte for byte, as ``chainrule train``
(and ``threads=1`` as ``chainrule --threads 1 train``).
"""
import difflib
import os
import warnings

from . import _core

# The library's names (FitOptions, PreprocessOptions, TrainOptions, OptimizerOptions) for the
# command line's flags; None means the library's default.
TRAIN_OPTIONS = (
    # preprocessing
    "drop", "scale", "impute", "task", "max_categories", "max_classes",
    # the network
    "layers", "activation", "loss", "init", "dtype",
    # training
    "seed", "val", "patience", "epochs", "batch", "shuffle", "dropout", "threads", "max_memory",
    "optimizer", "lr", "momentum", "nesterov", "weight_decay", "l2", "beta1", "beta2", "eps",
    "alpha",
    "schedule", "step_size", "gamma", "init_from", "timings",
)
# How a CSV path is read (the command line's --delimiter, --no-header, --skip-rows,
# --decimal-comma). A DataFrame needs none.
CSV_OPTIONS = ("delimiter", "header", "skip_rows", "decimal_comma")


# scikit-learn's names (and the command line's spelled as Python names) for the same options.
_ALIASES = {"learning_rate": "lr", "learning_rate_init": "lr", "hidden_layer_sizes": "layers",
            "max_iter": "epochs", "batch_size": "batch", "random_state": "seed",
            "validation": "val", "validation_fraction": "val", "n_iter_no_change": "patience",
            "solver": "optimizer", "alpha_l2": "weight_decay", "nesterovs_momentum": "nesterov",
            "beta_1": "beta1", "beta_2": "beta2", "epsilon": "eps", "no_header": "header",
            "random_seed": "seed", "hidden": "layers"}


def _refuse_unknown(function, given, known):
    for name in given:
        if name not in known:
            close = [_ALIASES[name]] if _ALIASES.get(name) in known else \
                difflib.get_close_matches(name, known, n=1)
            hint = f"; did you mean {close[0]!r}?" if close else ""
            raise TypeError(f"{function}() got an unexpected keyword argument {name!r}{hint} "
                            f"(its options: {', '.join(known)})")


def _source(data):
    """A path as str (read by chainrule's CSV reader), or a DataFrame; a name for messages."""
    if isinstance(data, (str, os.PathLike)):
        path = os.fspath(data)
        if not isinstance(path, str):
            path = os.fsdecode(path)
        return path, path
    if hasattr(data, "items") and hasattr(data, "columns") and hasattr(data, "dtypes"):
        return data, "the DataFrame"
    raise TypeError(f"data must be a CSV path or a pandas DataFrame, got {type(data).__name__}")


def _csv(function, options):
    _refuse_unknown(function, options, CSV_OPTIONS)
    return {k: v for k, v in options.items() if v is not None}


def _warn(notes):
    for text, option in notes:
        warnings.warn(text + (f" (option {option})" if option else ""), UserWarning, stacklevel=3)


def train(data, target=None, distributed=False, **options):
    """Trains a model as ``chainrule train`` does and returns the `chainrule.Model`.

    data: a CSV path (plain or gzip) or a pandas DataFrame. A DataFrame's numeric columns are
    numeric features (NaN is missing); object, string, category, bool and datetime columns are
    text (one-hot encoded; None/NaN is missing).
    target: the target column, by name or 0-based index (default: the last column).

    Options (the library's names for the command line's flags; left out, the command line's
    default): drop=[columns], scale='standard'|'minmax'|'none', impute='none'|'mean',
    task='classify'|'regress' (default inferred), layers=[100], activation='tanh', loss, init,
    dtype='float32'|'float64', seed=42, val=0.1, patience (default 20 with a validation split),
    epochs=200, batch=32, shuffle=True, dropout=0, threads (default: the cores available, as
    the command line; the same count gives the same bytes), max_memory (bytes),
    max_categories, max_classes, optimizer='adam'|'sgd'|'adamw'|'rmsprop', lr (default the
    optimizer's), momentum, nesterov, weight_decay, l2 (scikit-learn's alpha), beta1, beta2, eps,
    alpha, schedule='constant'|'step'|'cosine', step_size, gamma, init_from=Model (fine-tuning),
    timings=False (True: model.history['timings'], where this process's training steps spent
    their time in seconds, as the command line's --timings: steps, compute, rows, sums, update,
    gather, total).
    For a CSV path: delimiter=',', header=True, skip_rows=0, decimal_comma=False, and
    stream='auto'|'on'|'off' (the command line's --stream): 'on' reads a file of numbers in
    passes straight from it, holding the training matrix rather than its text and a table of
    doubles (the same model); 'auto' does so for a plain file of 256 MiB or more.

    distributed=True: under ``mpirun -np N python3 script.py``, the N processes train one model
    together (docs/distributed.md): a CSV path is read in parts, one per process (a DataFrame is
    taken to be this process's part of the rows, the parts in rank order making up the table).
    Every process returns the same model; save it on one (``chainrule.mpi_rank() == 0``).
    Without mpirun it trains alone.

    An unknown keyword is a TypeError; what the library refuses raises chainrule.Error (or a
    subclass) with its message; what it notices (a column of numbers read as text) is a
    UserWarning. The GIL is released while training; Ctrl-C stops within one batch
    (KeyboardInterrupt).
    """
    _refuse_unknown("train", options, TRAIN_OPTIONS + CSV_OPTIONS + ("stream",))
    stream = options.pop("stream", None)
    csv = _csv("train", {k: options.pop(k) for k in CSV_OPTIONS if k in options})
    if stream is not None:
        csv["stream"] = stream
    fit = {k: v for k, v in options.items() if v is not None}
    init_from = fit.pop("init_from", None)
    if target is not None:
        fit["target"] = target
    if "threads" in fit:
        csv["threads"] = fit["threads"]  # (left out: the cores available, in both)
    source, _ = _source(data)
    model, history = _core.train(source, csv, fit, init_from, bool(distributed))
    notes = history.pop("notes")
    model.__dict__["history"] = history
    _warn(notes)
    return model


def export_onnx(model, path):
    """Writes `model` as an ONNX file, preprocessing included: the same bytes as
    `chainrule export MODEL --onnx PATH`. Returns the file's size in bytes."""
    if not hasattr(_core, "export_onnx"):
        raise RuntimeError("this build of chainrule has no ONNX exporter (build it with ONNX: "
                           "Debian's libonnx-dev)")
    return _core.export_onnx(model, os.fspath(path))


def load_model(path):
    """The `chainrule.Model` in a model file written by `chainrule train`, `Model.save` or an
    estimator's `save` (any model, text features included)."""
    return _core.load_model(os.fspath(path))


def evaluate(model, data, **csv):
    """Loss and metrics of `model` on labelled data (a CSV path or a DataFrame): the fields of
    ``chainrule eval --json`` (rows, loss; accuracy, classes, confusion_matrix or mse, mae, r2;
    rows_without_target when some rows have no target) but the file names."""
    source, _ = _source(data)
    return _core.evaluate(model, source, _csv("evaluate", csv))


def predict(model, data, **csv):
    """Predictions for every row of `data` (a CSV path or a DataFrame; the target may be
    absent), as ``chainrule predict`` writes them: a pandas DataFrame with a column named after
    the target (the class label: a number for a numeric target, an integer when every class is
    one; or the value in the target's units) and, for classification,
    one probability column ``p_<class>`` per class. A DataFrame's index is kept."""
    import pandas as pd

    source, _ = _source(data)
    labels, values = _core.predict_table(model, source, _csv("predict", csv))
    index = None if isinstance(source, str) else data.index
    if labels is None:
        return pd.DataFrame({model.target: values}, index=index)
    import numpy as np

    if model.target_numeric:  # the numbers, as integers when they all are
        classes = np.asarray(model.class_values, dtype=float)
        if np.all(classes == np.round(classes)) and np.all(np.abs(classes) < 2**53):
            classes = classes.astype(np.int64)
    else:
        classes = np.asarray(model.classes, dtype=object)
    frame = {model.target: classes[labels]}
    for k, c in enumerate(model.classes):
        frame["p_" + c] = values[:, k]
    return pd.DataFrame(frame, index=index)


def explain(model, data, row=0, *, params=None, top=None, fd_step=1e-6, **csv):
    """One row's gradient as the chain rule, as ``chainrule explain MODEL DATA --row N --json``
    prints it: the inputs after preprocessing, every neuron's z and a, the loss, and for each
    parameter its chain-rule factors (symbol, formula, value), their product ``gradient``, what
    backpropagation computed and a central finite difference (step `fd_step`). The parameters:
    `params` (names such as 'w3' or 'layers.0.weight[2,1]'), else the `top` largest gradients,
    else all of a network of at most 100 parameters and the 10 largest gradients of a larger
    one."""
    source, name = _source(data)
    if isinstance(params, str):
        params = [params]
    return _core.explain_row(model, source, int(row), _csv("explain", csv), list(params or []),
                             int(top or 0), float(fd_step), name)


def mpi_rank():
    """This process's rank in the MPI job it was started in by mpirun (0 without one)."""
    return _core.mpi_rank()


def mpi_size():
    """The number of processes of the MPI job (1 without mpirun)."""
    return _core.mpi_size()
