"""scikit-learn's own conformance suite, every check of it, for both estimators."""
import warnings

from sklearn.utils.estimator_checks import parametrize_with_checks

import chainrule


@parametrize_with_checks([chainrule.MLPClassifier(), chainrule.MLPRegressor()])
def test_sklearn_check(estimator, check):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        check(estimator)
