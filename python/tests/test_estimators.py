"""The estimators against independent references: the command line on the same data and
settings, scikit-learn's machinery (Pipeline, GridSearchCV, clone), pickles, pandas."""
import csv
import io
import pickle
import json
import subprocess

import numpy as np
import pandas as pd
import pytest
from sklearn.base import clone
from sklearn.datasets import load_iris, make_regression
from sklearn.model_selection import GridSearchCV
from sklearn.pipeline import Pipeline
from sklearn.preprocessing import StandardScaler

import chainrule


@pytest.fixture(scope="module")
def iris():
    X, y = load_iris(return_X_y=True)
    return X, y


def small(**kw):
    kw.setdefault("hidden_layer_sizes", (8,))
    kw.setdefault("max_iter", 30)
    kw.setdefault("random_state", 0)
    return kw


def write_csv(path, X, y, names):
    with open(path, "w", newline="") as f:
        w = csv.writer(f)
        w.writerow(list(names) + ["y"])
        for row, t in zip(X, y):
            w.writerow([repr(float(v)) for v in row] + [t])


def cli_predict(cli, model, X, names, tmp_path):
    data = tmp_path / "predict.csv"
    with open(data, "w", newline="") as f:
        w = csv.writer(f)
        w.writerow(names)
        for row in X:
            w.writerow([repr(float(v)) for v in row])
    out = subprocess.run([cli, "predict", str(model), str(data)], check=True,
                         capture_output=True, text=True).stdout
    return list(csv.DictReader(out.splitlines()))


def test_classifier_learns_iris(iris):
    X, y = iris
    clf = chainrule.MLPClassifier(**small(max_iter=200, learning_rate_init=0.01)).fit(X, y)
    assert clf.score(X, y) > 0.9
    assert list(clf.classes_) == [0, 1, 2]
    assert clf.n_features_in_ == 4
    assert len(clf.loss_curve_) == clf.n_iter_
    assert clf.best_loss_ == min(clf.loss_curve_)
    assert [c.shape for c in clf.coefs_] == [(4, 8), (8, 3)]
    assert [b.shape for b in clf.intercepts_] == [(8,), (3,)]
    P = clf.predict_proba(X)
    np.testing.assert_allclose(P.sum(axis=1), 1, rtol=1e-6)


def cli_train_iris(cli, tmp_path, layers, activation, epochs, dtype):
    """`chainrule train` on iris.csv in tmp_path with the settings the estimators below use;
    returns the model as an estimator."""
    subprocess.run([cli, "train", str(tmp_path / "iris.csv"), "--target", "y", "--task",
                    "classify", "--layers", str(layers), "--activation", activation, "--seed", "7",
                    "--batch", "16", "--epochs", str(epochs), "--val", "0", "--lr", "0.001",
                    "--weight-decay", "0", "--dtype", dtype, "--quiet", "--out",
                    str(tmp_path / "cli.safetensors")],
                   check=True, capture_output=True)
    return chainrule.load(tmp_path / "cli.safetensors")


def test_params_equal_a_command_line_run(cli, iris, tmp_path):
    # Same data, same settings: the same model, bit for bit (the tolerance rule off).
    X, y = iris
    names = [f"x{i}" for i in range(4)]
    write_csv(tmp_path / "iris.csv", X, y, names)
    clf = chainrule.MLPClassifier(hidden_layer_sizes=(6,), activation="tanh", batch_size=16,
                                  max_iter=15, random_state=7, tol=0, n_iter_no_change=100,
                                  alpha=0).fit(X, y)
    reference = cli_train_iris(cli, tmp_path, 6, "tanh", 15, "float64")
    np.testing.assert_array_equal(clf.model_.params, reference.model_.params)
    np.testing.assert_array_equal(clf.predict_proba(X), reference.predict_proba(X))


@pytest.mark.skipif(not chainrule.bf16_available(), reason="this CPU has no AVX512_BF16")
def test_bfloat16_equals_a_command_line_run_and_float32s_accuracy(cli, iris, tmp_path):
    # dtype='bfloat16' is `--dtype bfloat16`: the same float32 weights, bit for bit; they differ
    # from float32's (the products are bfloat16) but score as well.
    X, y = iris
    names = [f"x{i}" for i in range(4)]
    write_csv(tmp_path / "iris.csv", X, y, names)
    settings = dict(hidden_layer_sizes=(16,), activation="relu", batch_size=16, max_iter=60,
                    random_state=7, tol=0, n_iter_no_change=100, alpha=0)
    clf = chainrule.MLPClassifier(dtype="bfloat16", **settings).fit(X, y)
    f32 = chainrule.MLPClassifier(dtype="float32", **settings).fit(X, y)
    reference = cli_train_iris(cli, tmp_path, 16, "relu", 60, "bfloat16")
    np.testing.assert_array_equal(clf.model_.params, reference.model_.params)
    assert clf.model_.dtype == "float32"
    assert not np.array_equal(clf.model_.params, f32.model_.params)
    assert clf.score(X, y) >= 0.9
    assert abs(clf.score(X, y) - f32.score(X, y)) <= 0.04


def test_predictions_equal_the_command_line(cli, tmp_path):
    X, y = make_regression(n_samples=80, n_features=3, noise=0.5, random_state=1)
    reg = chainrule.MLPRegressor(**small(max_iter=50)).fit(X, y)
    reg.save(tmp_path / "reg.safetensors")
    rows = cli_predict(cli, tmp_path / "reg.safetensors", X, [f"x{i}" for i in range(3)],
                       tmp_path)
    column = [k for k in rows[0] if k.startswith("predict") or k == "y"][0]
    np.testing.assert_allclose([float(r[column]) for r in rows], reg.predict(X), rtol=1e-5)

    Xc, yc = load_iris(return_X_y=True)
    labels = np.array(["setosa", "versicolor", "virginica"])[yc]
    clf = chainrule.MLPClassifier(**small()).fit(Xc, labels)
    clf.save(tmp_path / "clf.safetensors")
    rows = cli_predict(cli, tmp_path / "clf.safetensors", Xc, [f"x{i}" for i in range(4)],
                       tmp_path)
    column = [k for k in rows[0] if k.startswith("predict") or k == "y"][0]
    assert [r[column] for r in rows] == list(clf.predict(Xc))
    loaded = chainrule.load(tmp_path / "clf.safetensors")
    assert list(loaded.predict(Xc)) == list(clf.predict(Xc))
    # The estimators make no final pass over the training rows (scikit-learn makes none): the
    # file says "not measured" where the command line's has the training split's metrics.
    info = json.loads(subprocess.run([cli, "info", str(tmp_path / "clf.safetensors"), "--json"],
                                     check=True, capture_output=True, text=True).stdout)
    assert info["metrics"]["train"]["rows"] == 0
    assert info["metrics"]["epochs_run"] == len(clf.loss_curve_)
    assert [e["train_loss"] for e in info["metrics"]["history"]] == clf.loss_curve_


def test_load_reads_a_command_line_model_with_text_features(cli, tmp_path):
    """passengers.csv has text columns (Sex, Embarked) and NA gaps: the loaded estimator predicts
    from a DataFrame as `chainrule predict` does, and carries the file's history."""
    import pathlib
    data = str(pathlib.Path(__file__).resolve().parents[2] / "tests" / "data" / "real" /
               "passengers.csv")
    model = tmp_path / "passengers.safetensors"
    subprocess.run([cli, "--threads", "1", "train", data, "--target", "Survived", "--drop",
                    "PassengerId,Name,Comment", "--impute", "mean", "--layers", "8",
                    "--epochs", "15", "--seed", "5", "--quiet", "--out", str(model)],
                   check=True, capture_output=True)
    est = chainrule.load(model)
    table = pd.read_csv(data)
    rows = list(csv.DictReader(io.StringIO(subprocess.run(
        [cli, "predict", str(model), data], check=True, capture_output=True,
        text=True).stdout)))
    proba = est.predict_proba(table)
    for k, c in enumerate(est.classes_):
        np.testing.assert_allclose(proba[:, k], [float(r[f"p_{c}"]) for r in rows], rtol=1e-5)
    assert [str(v) for v in est.predict(table)] == [r["Survived"] for r in rows]
    assert list(est.feature_names_in_) == ["Sex", "Age", "Fare", "Embarked", "Boarded"]
    info = json.loads(subprocess.run([cli, "info", str(model), "--json"], check=True,
                                     capture_output=True, text=True).stdout)
    assert est.loss_curve_ == [e["train_loss"] for e in info["metrics"]["history"]]
    assert est.n_iter_ == 15
    with pytest.raises(ValueError, match="lacks the model's columns"):
        est.predict(table.drop(columns="Sex"))
    with pytest.raises(ValueError, match="text features"):
        est.set_params(warm_start=True).fit(np.zeros((4, 5)), ["no", "yes", "no", "yes"])


MEMORY_SCRIPT = """
import resource, sys, warnings
import numpy as np
import chainrule
warnings.filterwarnings("ignore")
order, scale = sys.argv[1], sys.argv[2]
X = np.empty((60000, 200), dtype=np.float32, order=order)  # 46 MiB, filled without a temporary
rng = np.random.default_rng(0)
for i in range(0, 60000, 5000):
    X[i:i + 5000] = rng.standard_normal((5000, 200), dtype=np.float32)
y = (X[:, 0] > 0).astype(int)
before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024
chainrule.MLPClassifier(hidden_layer_sizes=(8,), max_iter=1, scale=scale, random_state=0).fit(X, y)
after = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024
print((after - before) / X.nbytes)
"""


@pytest.mark.parametrize("order, scale, most", [("C", "none", 0.15), ("C", "standard", 1.15),
                                                ("F", "none", 1.15)])
def test_fit_adds_at_most_one_copy_of_the_data(order, scale, most):
    """Peak RSS (each case in a process of its own): a C-order float32 array with scale='none'
    is read in place (no copy); scaled, or in Fortran order, the training matrix is one copy."""
    import sys
    added = float(subprocess.run([sys.executable, "-c", MEMORY_SCRIPT, order, scale],
                                 check=True, capture_output=True, text=True).stdout)
    assert added <= most


def test_pickle_and_clone_round_trip(iris):
    X, y = iris
    clf = chainrule.MLPClassifier(**small()).fit(X, y)
    again = pickle.loads(pickle.dumps(clf))
    np.testing.assert_array_equal(again.predict_proba(X), clf.predict_proba(X))
    np.testing.assert_array_equal(again.coefs_[0], clf.coefs_[0])
    fresh = clone(clf)
    assert fresh.get_params() == clf.get_params() and not hasattr(fresh, "classes_")
    np.testing.assert_array_equal(fresh.fit(X, y).predict_proba(X), clf.predict_proba(X))


def test_coefs_are_views_that_write_through(iris):
    X, y = iris
    clf = chainrule.MLPClassifier(**small()).fit(X, y)
    before = clf.predict_proba(X)
    W = clf.coefs_[1]
    assert np.shares_memory(W, clf.model_.params)
    W[:] = 0
    clf.intercepts_[1][:] = 0
    assert np.all(clf.model_.params[-(8 * 3 + 3):] == 0)
    np.testing.assert_allclose(clf.predict_proba(X), 1 / 3)  # zero output layer: uniform
    assert not np.allclose(before, 1 / 3)


def test_pipeline_and_grid_search(iris):
    X, y = iris
    pipe = Pipeline([("scale", StandardScaler()), ("mlp", chainrule.MLPClassifier(**small()))])
    grid = GridSearchCV(pipe, {"mlp__hidden_layer_sizes": [(4,), (16,)],
                               "mlp__solver": ["adam", "sgd"]}, cv=3)
    grid.fit(X, y)
    assert grid.best_score_ > 0.6
    assert set(grid.cv_results_["param_mlp__solver"]) == {"adam", "sgd"}
    assert grid.score(X, y) > 0.6


def test_dataframe_feature_names_and_layouts(iris):
    X, y = iris
    df = pd.DataFrame(X, columns=["sepal_l", "sepal_w", "petal_l", "petal_w"])
    clf = chainrule.MLPClassifier(**small()).fit(df, y)
    assert list(clf.feature_names_in_) == list(df.columns)
    assert list(clf.model_.feature_names) == list(df.columns)
    P = clf.predict_proba(df)
    # the same data in every layout the engine reads in place, and converted ones
    for other in (np.asfortranarray(X), np.ascontiguousarray(X), X.astype(np.float32),
                  np.asfortranarray(X.astype(np.float32)), X[:, :],
                  np.hstack([X, X])[:, :4]):
        ref = chainrule.MLPClassifier(**small()).fit(other, y)
        np.testing.assert_allclose(ref.predict_proba(other), P, rtol=1e-5, atol=1e-6)


def test_refuses_what_it_cannot_honour(iris):
    X, y = iris
    for bad in ({"solver": "lbfgs"}, {"activation": "identity"},
                {"solver": "sgd", "learning_rate": "adaptive"}):
        with pytest.raises(ValueError, match="not supported"):
            chainrule.MLPClassifier(**small(**bad)).fit(X, y)


def test_early_stopping_records_validation_scores(iris):
    X, y = iris
    clf = chainrule.MLPClassifier(**small(early_stopping=True, max_iter=300,
                                          learning_rate_init=0.01)).fit(X, y)
    assert len(clf.validation_scores_) == clf.n_iter_
    assert clf.best_validation_score_ == max(clf.validation_scores_)
    assert clf.best_loss_ is None
    assert clf.n_iter_ < 300  # scikit-learn's n_iter_no_change rule stopped it


def test_early_stopping_keeps_the_weights_of_the_best_validation_score():
    """As scikit-learn: the weights kept are those of the epoch with the best validation score
    (the first of equals), not of the best validation loss. On this run the two differ: kept by
    the loss, the best epoch was 58 and the kept weights' score 0.9722 (checked by hand)."""
    from sklearn.datasets import load_digits
    X, y = load_digits(return_X_y=True)
    clf = chainrule.MLPClassifier(hidden_layer_sizes=(64,), early_stopping=True,
                                  validation_fraction=0.3, max_iter=60, n_iter_no_change=60,
                                  tol=0, random_state=0, learning_rate_init=0.01,
                                  scale="none").fit(X[:600] / 16, y[:600])
    scores = clf.validation_scores_
    metrics = clf.model_.metrics
    assert metrics["best_epoch"] == int(np.argmax(scores)) + 1
    # The kept weights' accuracy on the validation rows, measured after training.
    assert metrics["validation"]["value"] == clf.best_validation_score_ == max(scores)


@pytest.mark.parametrize("batch", [7, 1])
def test_alpha_is_scikit_learns_l2_penalty_on_the_weights(batch):
    """An epoch of plain SGD steps (batches of 7 and 3 rows in file order; or ten one-row steps,
    the engine's one-sample path) from the weights of a first fit, against numpy: each weight's
    gradient gains (alpha/n)·w for the batch's own n rows, the biases' nothing; softmax
    cross-entropy averaged over the batch, ReLU hidden layer; the epoch's loss_curve_ value is
    scikit-learn's, the penalty alpha/(2n)·Σw² of each batch included."""
    rng = np.random.default_rng(4)
    X = rng.normal(size=(10, 4))
    y = np.array([0, 1, 2, 0, 1, 2, 0, 1, 2, 2])
    alpha, lr = 0.3, 0.1
    clf = chainrule.MLPClassifier(hidden_layer_sizes=(5,), solver="sgd", momentum=0.0,
                                  learning_rate_init=lr, batch_size=batch, max_iter=1, shuffle=False,
                                  alpha=alpha, scale="none", random_state=0).fit(X, y)
    W = [c.copy() for c in clf.coefs_]
    b = [c.copy() for c in clf.intercepts_]
    clf.set_params(warm_start=True).fit(X, y)
    Y = np.eye(3)[y]
    loss_sum = 0.0
    for start in range(0, 10, batch):
        Xb, Yb = X[start:start + batch], Y[start:start + batch]
        n = Xb.shape[0]
        Z1 = Xb @ W[0] + b[0]
        H = np.maximum(Z1, 0)
        Z2 = H @ W[1] + b[1]
        P = np.exp(Z2 - Z2.max(axis=1, keepdims=True))
        P /= P.sum(axis=1, keepdims=True)
        # scikit-learn's batch loss: cross-entropy plus alpha/(2n)·Σw², weighted by the rows
        penalty = alpha / (2 * n) * sum((w ** 2).sum() for w in W)
        loss_sum += (-np.log((P * Yb).sum(axis=1)).mean() + penalty) * n
        d2 = (P - Yb) / n
        d1 = (d2 @ W[1].T) * (Z1 > 0)
        gW = [Xb.T @ d1 + alpha / n * W[0], H.T @ d2 + alpha / n * W[1]]
        gb = [d1.sum(axis=0), d2.sum(axis=0)]
        W = [w - lr * g for w, g in zip(W, gW)]
        b = [v - lr * g for v, g in zip(b, gb)]
    for got, want in zip(clf.coefs_ + clf.intercepts_, W + b):
        np.testing.assert_allclose(got, want, rtol=1e-10, atol=1e-13)
    assert clf.loss_curve_[-1] == pytest.approx(loss_sum / 10, rel=1e-12)


def test_partial_fit_continues(iris):
    X, y = iris
    clf = chainrule.MLPClassifier(**small())
    clf.partial_fit(X, y, classes=np.unique(y))
    first = clf.loss_curve_[-1]
    for _ in range(20):
        clf.partial_fit(X, y)
    assert clf.n_iter_ == 21 and clf.loss_curve_[-1] < first
    with pytest.raises(ValueError):
        clf.partial_fit(X[:, :3], y)


@pytest.mark.parametrize("solver", ["adam", "sgd", "rmsprop"])
def test_partial_fit_calls_continue_one_optimizer(iris, solver):
    """Three partial_fit calls over the same rows in file order are three epochs of one run:
    the same weights, bit for bit, as fit with max_iter=3 (Adam's moments and step count, SGD's
    momentum carried from call to call, as scikit-learn's)."""
    X, y = iris
    settings = dict(hidden_layer_sizes=(8,), solver=solver, shuffle=False, random_state=0,
                    scale="none", tol=0, n_iter_no_change=100, learning_rate_init=0.01)
    whole = chainrule.MLPClassifier(max_iter=3, **settings).fit(X, y)
    parts = chainrule.MLPClassifier(max_iter=1, **settings)
    for _ in range(3):
        parts.partial_fit(X, y, classes=np.unique(y))
    for a, b in zip(parts.coefs_ + parts.intercepts_, whole.coefs_ + whole.intercepts_):
        np.testing.assert_array_equal(a, b)
    assert parts.loss_curve_ == whole.loss_curve_
    # pickled between calls, the estimator still continues the same run
    again = chainrule.MLPClassifier(max_iter=1, **settings)
    again.partial_fit(X, y, classes=np.unique(y))
    again = pickle.loads(pickle.dumps(again))
    again.partial_fit(X, y)
    again.partial_fit(X, y)
    np.testing.assert_array_equal(again.coefs_[0], whole.coefs_[0])


@pytest.mark.parametrize("text", [False, True])
def test_partial_fit_classes_need_not_all_be_in_the_first_call(iris, text):
    """As scikit-learn: the first call's `classes` are the model's outputs even when its y holds
    only some of them; a later call teaches the rest. A y outside `classes` is refused."""
    X, y = iris
    names = np.array(["setosa", "versicolor", "virginica"])
    labels = names[y] if text else y
    classes = names if text else np.array([0, 1, 2])
    clf = chainrule.MLPClassifier(**small(learning_rate_init=0.01))
    first = y < 2  # no virginica in the first call
    clf.partial_fit(X[first], labels[first], classes=classes)
    assert list(clf.classes_) == list(classes) and clf.predict_proba(X).shape == (150, 3)
    for _ in range(200):
        clf.partial_fit(X, labels)
    assert clf.score(X, labels) > 0.9  # the class the first call lacked is learnt
    with pytest.raises(ValueError, match="misses classes"):
        chainrule.MLPClassifier(**small()).partial_fit(X, labels, classes=classes[:2])


def test_verbose_prints_each_epoch_as_it_ends(iris, capfd):
    X, y = iris
    clf = chainrule.MLPClassifier(**small(max_iter=3, verbose=True, early_stopping=True,
                                          n_iter_no_change=10)).fit(X, y)
    lines = capfd.readouterr().out.splitlines()
    assert lines[0::2] == [f"Iteration {i}, loss = {v:.8f}"
                           for i, v in enumerate(clf.loss_curve_, 1)]
    assert lines[1::2] == [f"Validation score: {v:.6f}" for v in clf.validation_scores_]
    clf.set_params(early_stopping=False).partial_fit(X, y)  # numbering goes on
    assert capfd.readouterr().out == f"Iteration 4, loss = {clf.loss_curve_[-1]:.8f}\n"


def test_warm_start_continues_the_history(iris):
    """As scikit-learn: a warm-started fit goes on from the fitted weights, and n_iter_ and
    loss_curve_ go on counting."""
    X, y = iris
    clf = chainrule.MLPClassifier(**small(max_iter=3, tol=0)).fit(X, y)
    first = list(clf.loss_curve_)
    clf.set_params(warm_start=True, max_iter=2).fit(X, y)
    assert clf.n_iter_ == 5 and clf.loss_curve_[:3] == first and len(clf.loss_curve_) == 5
    assert clf.best_loss_ == min(clf.loss_curve_)
    clf.set_params(warm_start=False).fit(X, y)  # a cold fit starts over
    assert clf.n_iter_ == 2


def test_engine_errors_are_value_errors():
    with pytest.raises(chainrule.ConfigError) as e:
        chainrule.Network(2, [(0, "relu")])
    assert isinstance(e.value, ValueError)
    with pytest.raises(chainrule.Error):
        chainrule.load("/nonexistent/model.safetensors")


def test_help_shows_docstrings():
    import pydoc
    for estimator, task in ((chainrule.MLPClassifier, "classifier"),
                            (chainrule.MLPRegressor, "regressor")):
        text = pydoc.render_doc(estimator, renderer=pydoc.plaintext)  # what help() prints
        assert f"perceptron {task}" in text and "drop-in" in text
        for own in ("dropout :", "dtype :", "threads :", "schedule :", "scale :", "alpha is"):
            assert own in text
        assert "Fits the network" in text  # the methods' docstrings too


@pytest.mark.parametrize("name", ["MLPClassifier", "MLPRegressor"])
def test_parameters_are_scikit_learns(name):
    """Every parameter of scikit-learn's estimator, with its name, default and kind (keyword-only
    after activation); chainrule's own five after them."""
    import inspect
    import sklearn.neural_network
    ours = inspect.signature(getattr(chainrule, name)).parameters
    theirs = inspect.signature(getattr(sklearn.neural_network, name)).parameters
    for p in theirs.values():
        assert p.name in ours and ours[p.name].default == p.default, p.name
        assert ours[p.name].kind == p.kind, p.name
    assert list(ours)[:len(theirs)] == list(theirs)
    assert set(ours) - set(theirs) == {"dropout", "dtype", "threads", "schedule", "scale"}


def test_ctrl_c_stops_training_and_leaves_the_estimator_usable(iris):
    import os
    import signal
    import threading
    import time

    X, y = iris
    clf = chainrule.MLPClassifier(**small()).fit(X, y)
    before = clf.predict_proba(X)
    big = np.random.default_rng(0).normal(size=(20000, 20))
    labels = (big[:, 0] > 0).astype(int)
    ticks = []
    stop = threading.Event()

    def count():  # runs only while training has released the GIL
        while not stop.is_set():
            ticks.append(1)
            time.sleep(0.01)

    counter = threading.Thread(target=count)
    counter.start()
    threading.Timer(0.5, lambda: os.kill(os.getpid(), signal.SIGINT)).start()
    start = time.monotonic()
    with pytest.raises(KeyboardInterrupt):
        clf.set_params(hidden_layer_sizes=(64,), max_iter=10000, tol=0).fit(big, labels)
    elapsed = time.monotonic() - start
    stop.set()
    counter.join()
    assert elapsed < 5
    assert len(ticks) > 10  # the other thread ran during fit
    np.testing.assert_array_equal(clf.predict_proba(X), before)  # the last fit's model stands
