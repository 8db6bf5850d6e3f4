"""The low-level engine: params/grads views, the canonical step against a numpy reference,
explain(), and the tutorial against `chainrule demo`."""
import re
import subprocess
import sys

import numpy as np
import pytest

import chainrule


def sigmoid(z):
    return 1 / (1 + np.exp(-z))


def test_params_and_grads_are_views():
    net = chainrule.Network(2, [(2, "sigmoid"), (1, "sigmoid")])
    p, g = net.params, net.grads
    assert p.shape == g.shape == (9,)
    p[:] = np.arange(9) / 10
    assert np.array_equal(net.params, np.arange(9) / 10)  # written through
    X = np.array([[1.0, 2.0]])
    # W (in, out) column-major: W[i, j] at i + j*in; b follows
    W1, b1, W2, b2 = p[:4].reshape(2, 2).T, p[4:6], p[6:8].reshape(1, 2).T, p[8:]
    expected = sigmoid(sigmoid(X @ W1 + b1) @ W2 + b2)
    np.testing.assert_allclose(net.forward(X), expected, rtol=1e-12)
    net.zero_grad()
    net.backward(np.array([[0.0]]))
    assert np.any(g != 0)  # the view sees the backward pass
    p[8] += 1  # changes the network's output
    assert net.forward(X)[0, 0] > expected[0, 0]


def test_sgd_step_and_gradient_against_finite_differences():
    net = chainrule.Network(3, [(4, "tanh"), (2, "identity")], loss="mse")
    net.initialize("xavier", seed=3)
    rng = np.random.default_rng(0)
    X, Y = rng.normal(size=(5, 3)), rng.normal(size=(5, 2))
    net.zero_grad()
    net.forward(X)
    net.backward(Y)
    grads, p0 = net.grads.copy(), net.params.copy()
    h = 1e-6
    for i in range(len(p0)):
        net.params[i] = p0[i] + h
        net.forward(X)
        up = net.loss(Y)
        net.params[i] = p0[i] - h
        net.forward(X)
        down = net.loss(Y)
        net.params[i] = p0[i]
        assert grads[i] == pytest.approx((up - down) / (2 * h), rel=1e-5, abs=1e-8)
    chainrule.SGD(lr=0.5).step(net)
    np.testing.assert_allclose(net.params, p0 - 0.5 * grads, rtol=1e-15)


def test_explain_factors_multiply_to_the_gradient():
    net = chainrule.Network(2, [(2, "sigmoid"), (1, "sigmoid")])
    net.initialize("normal", seed=13)
    e = net.explain([-2.0, 5.0], [1.0])
    assert len(e["params"]) == 9
    for p in e["params"]:
        assert np.prod([f[2] for f in p["factors"]]) == pytest.approx(p["chain"], rel=1e-12)
        assert p["chain"] == pytest.approx(p["finite_difference"], rel=1e-5, abs=1e-9)
        assert p["chain"] == pytest.approx(p["backprop"], rel=1e-12, abs=1e-15)
    net.zero_grad()
    net.forward(np.array([[-2.0, 5.0]]))
    net.backward(np.array([[1.0]]))
    np.testing.assert_allclose([p["backprop"] for p in e["params"]], net.grads, rtol=1e-12)


def test_tutorial_reproduces_chainrule_demo(cli, root):
    demo = subprocess.run([cli, "demo"], check=True, capture_output=True, text=True).stdout
    ours = subprocess.run([sys.executable, str(root / "examples" / "tutorial.py")], check=True,
                          capture_output=True, text=True).stdout
    drop = lambda text: re.sub(r"trained in [0-9.]+ ms", "", text).splitlines()  # noqa: E731
    assert drop(ours) == drop(demo)
    assert len(drop(demo)) > 100
    assert len((root / "examples" / "tutorial.py").read_text().splitlines()) < 40
