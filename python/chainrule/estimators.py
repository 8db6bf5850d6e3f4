"""scikit-learn estimators on chainrule's C++ engine: MLPClassifier and MLPRegressor.

Parameters are scikit-learn's (same names, same defaults) where they mean the same; a value
chainrule cannot honour is refused with a ValueError at fit, never silently ignored. chainrule's
own parameters follow: dropout, dtype, threads, schedule, scale.
"""

import numbers
import warnings

import numpy as np
from sklearn.base import BaseEstimator, ClassifierMixin, RegressorMixin
from sklearn.exceptions import ConvergenceWarning
from sklearn.utils import check_random_state, column_or_1d
from sklearn.utils.multiclass import check_classification_targets
from sklearn.utils.validation import check_is_fitted

from . import _core

_ACTIVATIONS = {"relu": "relu", "tanh": "tanh", "logistic": "sigmoid", "leaky_relu": "leaky_relu"}
_SOLVERS = ("sgd", "adam", "adamw", "rmsprop")
_OUT_ACTIVATIONS = {"sigmoid": "logistic", "softmax": "softmax", "identity": "identity"}


class _BaseMLP(BaseEstimator):
    """What both estimators share: parameters, training through chainrule._core.fit, the
    attributes scikit-learn's MLPs have (coefs_ and intercepts_ as views of the model's flat
    parameter buffer), saving and pickling."""

    _task = None

    def __init__(
        self,
        hidden_layer_sizes=(100,),
        activation="relu",
        *,
        solver="adam",
        alpha=0.0001,
        batch_size="auto",
        learning_rate="constant",
        learning_rate_init=0.001,
        power_t=0.5,
        max_iter=200,
        shuffle=True,
        random_state=None,
        tol=1e-4,
        verbose=False,
        warm_start=False,
        momentum=0.9,
        nesterovs_momentum=True,
        early_stopping=False,
        validation_fraction=0.1,
        beta_1=0.9,
        beta_2=0.999,
        epsilon=1e-8,
        n_iter_no_change=10,
        max_fun=15000,
        dropout=0.0,
        dtype="auto",
        threads=1,
        schedule="constant",
        scale="standard",
    ):
        self.hidden_layer_sizes = hidden_layer_sizes
        self.activation = activation
        self.solver = solver
        self.alpha = alpha
        self.batch_size = batch_size
        self.learning_rate = learning_rate
        self.learning_rate_init = learning_rate_init
        self.power_t = power_t
        self.max_iter = max_iter
        self.shuffle = shuffle
        self.random_state = random_state
        self.tol = tol
        self.verbose = verbose
        self.warm_start = warm_start
        self.momentum = momentum
        self.nesterovs_momentum = nesterovs_momentum
        self.early_stopping = early_stopping
        self.validation_fraction = validation_fraction
        self.beta_1 = beta_1
        self.beta_2 = beta_2
        self.epsilon = epsilon
        self.n_iter_no_change = n_iter_no_change
        self.max_fun = max_fun
        self.dropout = dropout
        self.dtype = dtype
        self.threads = threads
        self.schedule = schedule
        self.scale = scale

    # ---- options -------------------------------------------------------------------------

    def _options(self, n_samples, incremental, X_dtype):
        """The options of chainrule._core.fit, after checking every parameter."""
        name = type(self).__name__

        def refuse(what):
            raise ValueError(f"{name}: {what}")

        layers = self.hidden_layer_sizes
        if isinstance(layers, numbers.Integral):
            layers = [layers]
        layers = list(layers)
        if not layers or any(not isinstance(u, numbers.Integral) or u < 1 for u in layers):
            refuse(f"hidden_layer_sizes must be positive integers, got {self.hidden_layer_sizes!r}")
        if self.activation == "identity":
            refuse("activation='identity' is not supported by chainrule (hidden layers are "
                   "relu, tanh, logistic or leaky_relu)")
        if self.activation not in _ACTIVATIONS:
            refuse(f"activation must be one of {sorted(_ACTIVATIONS)}, got {self.activation!r}")
        if self.solver == "lbfgs":
            refuse("solver='lbfgs' is not supported by chainrule: use 'adam', 'sgd', 'adamw' "
                   "or 'rmsprop'")
        if self.solver not in _SOLVERS:
            refuse(f"solver must be one of {list(_SOLVERS)}, got {self.solver!r}")
        if self.solver == "sgd" and self.learning_rate != "constant":
            refuse(f"learning_rate={self.learning_rate!r} is not supported by chainrule: use "
                   "'constant', or chainrule's schedule='step' or 'cosine'")
        if self.learning_rate not in ("constant", "invscaling", "adaptive"):
            refuse(f"learning_rate must be 'constant', got {self.learning_rate!r}")
        if not isinstance(self.max_iter, numbers.Integral) or self.max_iter < 1:
            refuse(f"max_iter must be a positive integer, got {self.max_iter!r}")
        if not isinstance(self.n_iter_no_change, numbers.Integral) or self.n_iter_no_change < 1:
            refuse(f"n_iter_no_change must be a positive integer, got {self.n_iter_no_change!r}")
        for p in ("alpha", "learning_rate_init", "tol", "epsilon"):
            v = getattr(self, p)
            if not isinstance(v, numbers.Real) or v < 0 or (p == "learning_rate_init" and v == 0):
                refuse(f"{p} must be a {'positive' if p == 'learning_rate_init' else 'non-negative'}"
                       f" number, got {v!r}")
        for p in ("momentum", "beta_1", "beta_2", "validation_fraction", "dropout"):
            v = getattr(self, p)
            if not isinstance(v, numbers.Real) or not 0 <= v < 1:
                refuse(f"{p} must be in [0, 1), got {v!r}")
        if self.early_stopping and not 0 < self.validation_fraction < 1:
            refuse("validation_fraction must be in (0, 1) with early_stopping")
        if self.batch_size == "auto":
            batch = min(200, n_samples)
        elif isinstance(self.batch_size, numbers.Integral) and self.batch_size >= 1:
            batch = min(int(self.batch_size), n_samples)
        else:
            refuse(f"batch_size must be 'auto' or a positive integer, got {self.batch_size!r}")
        if self.dtype not in ("auto", "float32", "float64", "bfloat16"):
            refuse(f"dtype must be 'auto', 'float32', 'float64' or 'bfloat16', got {self.dtype!r}")
        if not isinstance(self.threads, numbers.Integral) or self.threads < 1:
            refuse(f"threads must be a positive integer, got {self.threads!r}")
        if self.schedule not in ("constant", "step", "cosine"):
            refuse(f"schedule must be 'constant', 'step' or 'cosine', got {self.schedule!r}")
        if self.scale not in ("standard", "minmax", "none"):
            refuse(f"scale must be 'standard', 'minmax' or 'none', got {self.scale!r}")
        if incremental and self.early_stopping:
            refuse("partial_fit does not support early_stopping=True")
        rng = check_random_state(self.random_state)
        seed = (self.random_state if isinstance(self.random_state, numbers.Integral)
                else int(rng.randint(np.iinfo(np.int32).max)))
        return {
            "task": self._task,
            "scale": self.scale,
            "layers": layers,
            "activation": _ACTIVATIONS[self.activation],
            "seed": int(seed) & (2**64 - 1),
            "validation": float(self.validation_fraction) if self.early_stopping else 0.0,
            "dtype": ("float32" if X_dtype == np.float32 else "float64") if self.dtype == "auto"
            else self.dtype,
            "threads": int(self.threads),
            # No final pass over the training rows (scikit-learn makes none): the model's
            # training metrics are "not measured"; loss_curve_ has the epochs' losses.
            "measure_train": False,
            "epochs": 1 if incremental else int(self.max_iter),
            "batch": int(batch),
            "shuffle": bool(self.shuffle),
            "dropout": float(self.dropout),
            "optimizer": self.solver,
            "lr": float(self.learning_rate_init),
            "momentum": float(self.momentum) if self.solver in ("sgd", "rmsprop") else 0.0,
            "nesterov": bool(self.nesterovs_momentum and self.solver == "sgd"
                             and self.momentum > 0),
            # scikit-learn's L2 term alpha/(2n)·‖W‖² over the weights of a batch of n rows: each
            # weight's gradient gains (alpha/n)·w, the biases' nothing (TrainOptions::l2)
            "l2": float(self.alpha),
            # early_stopping keeps the weights of the best validation score, as scikit-learn
            "monitor_metric": bool(self.early_stopping),
            "beta1": float(self.beta_1),
            "beta2": float(self.beta_2),
            "eps": float(self.epsilon),
            "schedule": self.schedule,
            "sklearn_stop": not incremental,
            "tol": float(self.tol),
            "n_iter_no_change": int(self.n_iter_no_change),
        }

    # ---- data ----------------------------------------------------------------------------

    def _names(self, n_features):
        names = getattr(self, "feature_names_in_", None)
        if names is not None:
            return [str(n) for n in names]
        return [f"x{i}" for i in range(n_features)]

    def _check_X(self, X, reset):
        return self._validate_data(X, reset=reset, dtype=[np.float64, np.float32])

    def _fit(self, X, y, incremental=False, classes=None):
        # A fit that fails or is interrupted (Ctrl-C) leaves the estimator as it was.
        before = self.__dict__.copy()
        try:
            return self._fit_unguarded(X, y, incremental, classes)
        except BaseException:
            self.__dict__.clear()
            self.__dict__.update(before)
            raise

    def _fit_unguarded(self, X, y, incremental, classes):
        first = not (incremental or self.warm_start) or not hasattr(self, "_model")
        if not first and getattr(self, "_tabular", False):
            raise ValueError("this model has text features: continue its training with "
                             "chainrule.train(data, init_from=model) on its table")
        self._tabular = False
        # NaN and infinite values are not looked for here: the engine finds them in the pass it
        # makes over the features anyway and names the row and column (a ValueError saying
        # "NaN" or "infinite", as scikit-learn's own check would). Looking here too cost a
        # second pass over the data: 13-19 ms for Fashion-MNIST's 60000×784 float32.
        X, y = self._validate_data(X, y, reset=first, dtype=[np.float64, np.float32],
                                   multi_output=True, y_numeric=self._task == "regress",
                                   force_all_finite=False)
        y = column_or_1d(y, warn=True)
        options = self._options(X.shape[0], incremental, X.dtype)
        numbers_, labels = self._targets(y, classes, first)
        if first and classes is not None:  # the model's classes: these, seen in y or not
            if numbers_ is not None:
                options["class_values"] = [float(c) for c in self.classes_]
            else:
                options["class_labels"] = [str(c) for c in self.classes_]
        names = self._names(X.shape[1])
        init_from = None if first else self._model
        if not first:
            names = list(self._model.feature_names)
        options["verbose"] = bool(self.verbose)
        options["first_iteration"] = getattr(self, "n_iter_", 0) + 1 if not first else 1
        if incremental:  # partial_fit: one optimizer from call to call, as scikit-learn's
            options["keep_optimizer"] = True
            if not first:
                options["optimizer_state"] = getattr(self, "_optimizer_state", None)
        model, history = _core.fit(X, numbers_, labels, names, options, init_from)
        self._optimizer_state = history.get("optimizer_state")
        if self._task == "classify":
            self._set_class_order(model)
        self._model = model
        # A warm start or a later partial_fit continues the history (scikit-learn's n_iter_,
        # loss_curve_ and validation_scores_ go on counting).
        self._set_history(history, X.shape[0], not first, incremental)
        return self

    def _set_history(self, history, n_samples, more, incremental):
        loss = list(history["loss"])
        if more:
            self.loss_curve_ = self.loss_curve_ + loss
            self.n_iter_ += len(loss)
        else:
            self.loss_curve_ = loss
            self.n_iter_ = len(loss)
        self.t_ = self.n_iter_ * n_samples
        self.best_loss_ = None if self.early_stopping else float(min(self.loss_curve_))
        if self.early_stopping and history["val_metric"]:
            earlier = getattr(self, "validation_scores_", None) if more else None
            self.validation_scores_ = list(earlier or []) + list(history["val_metric"])
            self.best_validation_score_ = max(self.validation_scores_)
        else:
            self.validation_scores_ = None
            self.best_validation_score_ = None
        self.n_layers_ = len(self._model.layers) + 1
        self.n_outputs_ = self._model.layers[-1]["units"]
        self.out_activation_ = _OUT_ACTIVATIONS[self._model.layers[-1]["activation"]]
        self.fit_seconds_ = history["seconds"]
        if not incremental and not history["stopped_early"] and len(loss) >= self.max_iter:
            warnings.warn(f"Stochastic Optimizer: Maximum iterations ({self.max_iter}) reached "
                          "and the optimization hasn't converged yet.", ConvergenceWarning)

    # ---- fitted attributes ---------------------------------------------------------------

    @property
    def coefs_(self):
        """Weight matrices (n_in, n_out) per layer, as scikit-learn shapes them: numpy VIEWS of
        the model's flat parameter buffer (writing to them changes the model). With
        scale='standard' (the default), layer 0 sees standardized inputs."""
        if not hasattr(self, "_model"):
            raise AttributeError("coefs_: the estimator is not fitted")
        p = self._model.params
        return [p[l["offset"]:l["offset"] + l["inputs"] * l["units"]]
                .reshape(l["units"], l["inputs"]).T for l in self._model.layers]

    @property
    def intercepts_(self):
        """Bias vectors (n_out,) per layer: numpy VIEWS of the model's parameters."""
        if not hasattr(self, "_model"):
            raise AttributeError("intercepts_: the estimator is not fitted")
        p = self._model.params
        return [p[l["bias_offset"]:l["bias_offset"] + l["units"]] for l in self._model.layers]

    @property
    def model_(self):
        """The chainrule._core.Model behind the estimator."""
        if not hasattr(self, "_model"):
            raise AttributeError("model_: the estimator is not fitted")
        return self._model

    def _outputs(self, X):
        check_is_fitted(self, "_model")
        if getattr(self, "_tabular", False):
            return self._table_outputs(X)
        X = self._check_X(X, reset=False)
        return self._model.predict(X, list(self._model.feature_names))

    def _table_outputs(self, X):
        """A loaded model with text features: X is a DataFrame with the model's columns (or a
        2-D array of them in feature_names_in_ order), preprocessed by the model as
        `chainrule predict` does."""
        import pandas as pd
        names = list(self._model.feature_names)
        if not isinstance(X, pd.DataFrame):
            X = np.asarray(X, dtype=object)
            if X.ndim != 2 or X.shape[1] != len(names):
                raise ValueError(f"X has {X.shape[-1] if X.ndim else 0} features, but this model "
                                 f"is expecting {len(names)} features as input ({names})")
            X = pd.DataFrame(X, columns=names)
        missing = [n for n in names if n not in X.columns]
        if missing:
            raise ValueError(f"X lacks the model's columns {missing} (the model has text "
                             "features: pass a DataFrame with its columns)")
        labels, values = _core.predict_table(self._model, X[names], {})
        return values

    # ---- files and pickles ---------------------------------------------------------------

    def save(self, path):
        """Writes the model file `chainrule train` writes: `chainrule predict`, `info`, `eval`
        and `export --onnx` read it, and chainrule.load(path) gives the estimator back."""
        check_is_fitted(self, "_model")
        self._model.save(str(path))

    def __getstate__(self):
        state = self.__dict__.copy()
        if "_model" in state:
            state["_model"] = state["_model"].to_bytes()
        return state

    def __setstate__(self, state):
        if "_model" in state:
            state["_model"] = _core.model_from_bytes(state["_model"])
        self.__dict__.update(state)


_PARAMETERS = """    Same parameters and defaults as scikit-learn's where they mean the same; refused with a
    ValueError where chainrule cannot honour them (solver='lbfgs', activation='identity',
    learning_rate other than 'constant' with sgd). chainrule's own:

    solver : also 'adamw' and 'rmsprop'.
    dropout : float, default 0. Dropout on hidden layers while training.
    dtype : 'auto' (default: float32 for float32 X, float64 otherwise, as scikit-learn),
        'float32' (fast) or 'float64': the precision of training and prediction; or
        'bfloat16' (CPUs with AVX512_BF16): float32 weights trained with bfloat16 matrix
        products, about twice as fast; prediction in float32.
    threads : int, default 1. Threads for training (the same count gives the same model).
    schedule : 'constant', 'step' or 'cosine', learning-rate schedule per epoch.
    scale : 'standard' (default), 'minmax' or 'none', the input scaling fitted on the
        training data and stored in the model (as `chainrule train` does).

    alpha is scikit-learn's L2 penalty: each weight's gradient gains (alpha/n)·w for a batch of
    n rows, the biases' nothing; with early_stopping the weights kept are those of the best
    validation score, as scikit-learn's; partial_fit calls continue one optimizer (its moments
    and step count), and the first call's `classes` are the model's whether or not its y holds
    each. loss_curve_ is the cross-entropy (binary or softmax) plus the penalty term
    alpha/(2n)·Σw² of each batch, as scikit-learn's.

    Attributes: classes_, n_features_in_, feature_names_in_, loss_curve_, best_loss_,
    validation_scores_, best_validation_score_, n_iter_, t_, n_layers_, n_outputs_,
    out_activation_, coefs_, intercepts_ (views of the model's parameters), model_.
    """


class MLPClassifier(ClassifierMixin, _BaseMLP):
    __doc__ = """Multi-layer perceptron classifier trained by chainrule's C++ engine: a drop-in for
    sklearn.neural_network.MLPClassifier.

""" + _PARAMETERS

    _task = "classify"

    def _targets(self, y, classes, first):
        check_classification_targets(y)
        if first:
            self.classes_ = np.unique(y) if classes is None else np.asarray(classes)
            if classes is not None and not np.all(np.isin(np.unique(y), self.classes_)):
                raise ValueError(f"`classes={self.classes_.tolist()}` misses classes of y "
                                 f"{np.setdiff1d(np.unique(y), self.classes_).tolist()}")
            if len(self.classes_) < 2:
                raise ValueError("Classifier can't train when only one class is present.")
        elif not np.all(np.isin(np.unique(y), self.classes_)):
            raise ValueError(f"y has classes not in classes_ {self.classes_.tolist()}")
        if self.classes_.dtype.kind in "biuf":
            return np.asarray(y, dtype=np.float64), None
        labels = [str(v) for v in y]
        if any(v == "" for v in labels):
            raise ValueError("class labels must not be empty strings")
        return None, labels

    def _set_class_order(self, model):
        """Where each of the model's outputs goes in classes_ (the model sorts its classes its
        own way; scikit-learn's order is np.unique's)."""
        if model.target_numeric:
            index = {float(c): i for i, c in enumerate(self.classes_)}
            self._order = np.array([index[v] for v in model.class_values])
        else:
            index = {str(c): i for i, c in enumerate(self.classes_)}
            self._order = np.array([index[v] for v in model.classes])

    def fit(self, X, y):
        """Fits the network to the data X (n_samples, n_features) and labels y."""
        return self._fit(X, y)

    def partial_fit(self, X, y, classes=None):
        """One epoch over (X, y), continuing from the current weights. `classes` is needed on
        the first call."""
        if not hasattr(self, "_model") and classes is None:
            raise ValueError("classes must be passed on the first call to partial_fit.")
        return self._fit(X, y, incremental=True, classes=classes)

    def predict_proba(self, X):
        """Class probabilities (n_samples, n_classes), columns in classes_ order."""
        P = self._outputs(X)
        out = np.empty_like(P)
        out[:, self._order] = P
        return out

    def predict_log_proba(self, X):
        """Log of predict_proba."""
        with np.errstate(divide="ignore"):
            return np.log(self.predict_proba(X))

    def predict(self, X):
        """The most probable class of every row."""
        P = self.predict_proba(X)
        return self.classes_[np.argmax(P, axis=1)]


class MLPRegressor(RegressorMixin, _BaseMLP):
    __doc__ = """Multi-layer perceptron regressor trained by chainrule's C++ engine: a drop-in for
    sklearn.neural_network.MLPRegressor (one target; a multi-output y is refused). The target is
    standardized for training and predictions are in its units; loss_curve_ is the mean squared
    error of the standardized target (plus alpha's penalty term).

""" + _PARAMETERS.replace("classes_, ", "").replace(
        ", and the first call's `classes` are the model's whether or not its y holds\n    each", "").replace(
        "loss_curve_ is the cross-entropy (binary or softmax) plus",
        "loss_curve_ is the standardized target's mean squared error plus")

    _task = "regress"

    def _targets(self, y, classes, first):
        return np.asarray(y, dtype=np.float64), None

    def fit(self, X, y):
        """Fits the network to the data X (n_samples, n_features) and targets y."""
        return self._fit(X, y)

    def partial_fit(self, X, y):
        """One epoch over (X, y), continuing from the current weights."""
        return self._fit(X, y, incremental=True)

    def predict(self, X):
        """Predicted values (n_samples,)."""
        return self._outputs(X)


def load(path):
    """The estimator for a model file written by `chainrule train` or save(path)."""
    model = _core.load_model(str(path))
    est = MLPClassifier() if model.task == "classify" else MLPRegressor()
    est._model = model
    hidden = [l["units"] for l in model.layers[:-1]]
    inverse = {v: k for k, v in _ACTIVATIONS.items()}
    est.set_params(hidden_layer_sizes=tuple(hidden), dtype=model.dtype,
                   activation=inverse.get(model.layers[0]["activation"], "relu"))
    names = list(model.feature_names)
    est.n_features_in_ = len(names)
    if names != [f"x{i}" for i in range(len(names))] or not model.numeric_features:
        est.feature_names_in_ = np.array(names, dtype=object)
    # A model with text features (one-hot encoded by the model's preprocessing) predicts from a
    # DataFrame with its columns, through the command line's path (chainrule.predict).
    est._tabular = not model.numeric_features
    if model.task == "classify":
        if model.target_numeric:
            values = np.array(model.class_values)
            est.classes_ = (values.astype(np.int64)
                            if np.all(values == np.round(values)) else values)
        else:
            est.classes_ = np.array(model.classes, dtype=object)
        est._set_class_order(model)
    history = (model.metrics or {}).get("history") or []
    est.loss_curve_ = [e["train_loss"] for e in history]
    est.n_iter_ = len(history)
    est.t_ = est.n_iter_ * int((model.settings or {}).get("rows", 0))
    scores = [e["val_metric"] for e in history if e["val_metric"] is not None]
    if scores:  # trained with a validation split: scikit-learn's early_stopping
        est.set_params(early_stopping=True,
                       validation_fraction=float((model.settings or {}).get("val", 0.1)))
        est.validation_scores_ = scores
        est.best_validation_score_ = max(scores)
        est.best_loss_ = None
    else:
        est.validation_scores_ = est.best_validation_score_ = None
        est.best_loss_ = min(est.loss_curve_) if est.loss_curve_ else None
    est.n_layers_ = len(model.layers) + 1
    est.n_outputs_ = model.layers[-1]["units"]
    est.out_activation_ = _OUT_ACTIVATIONS[model.layers[-1]["activation"]]
    return est
