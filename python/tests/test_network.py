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


def test_tutorial_is_chainrule_demo_bit_for_bit(cli, root):
    """The printed text has three and six decimals; `chainrule demo --exact` prints the doubles
    (17 digits, which read back exactly): the tutorial's trained parameters, its final loss and
    every reported loss (every tenth epoch's) are those doubles, bit for bit."""
    import contextlib
    import io
    import runpy
    text = subprocess.run([cli, "demo", "--exact"], check=True, capture_output=True,
                          text=True).stdout
    exact = text[text.index("Exact values"):].splitlines()
    params = [float(v) for v in exact[-1].split("): ")[1].split()]
    final = float(exact[-2].split()[-1])
    losses = [float(line.split()[-1]) for line in exact if line.startswith("epoch ")]
    with contextlib.redirect_stdout(io.StringIO()):
        g = runpy.run_path(str(root / "examples" / "tutorial.py"))
    assert list(g["net"].params) == params and len(params) == 9
    assert g["final"] == final
    assert [v for _, v in g["losses"]] == losses and len(losses) == 100


def test_written_gradients_are_what_the_optimizer_steps_with():
    net = chainrule.Network(2, [(2, "sigmoid"), (1, "sigmoid")])
    net.initialize("normal", seed=1)
    p0 = net.params.copy()
    net.grads[:] = np.linspace(-1, 1, 9)  # written through the view, no backward pass
    chainrule.SGD(lr=0.25).step(net)
    np.testing.assert_array_equal(net.params, p0 - 0.25 * np.linspace(-1, 1, 9))


@pytest.mark.parametrize("name", ["Adam", "AdamW", "RMSprop", "SGD-nesterov"])
def test_optimizers_step_as_torch_optim(name):
    """Three steps of each optimizer with the same gradients as torch.optim's (Debian's
    python3-torch, float64): the same parameters to a few units in the last place."""
    torch = pytest.importorskip("torch")
    rng = np.random.default_rng(7)
    net = chainrule.Network(3, [(4, "tanh"), (2, "identity")], loss="mse")
    p0 = rng.normal(size=net.params.shape)
    net.params[:] = p0
    t = torch.tensor(p0.copy(), requires_grad=True)
    ours, theirs = {
        "Adam": (chainrule.Adam(lr=0.01, weight_decay=0.1),
                 torch.optim.Adam([t], lr=0.01, weight_decay=0.1)),
        "AdamW": (chainrule.Adam(lr=0.01, weight_decay=0.1, decoupled=True),
                  torch.optim.AdamW([t], lr=0.01, weight_decay=0.1)),
        "RMSprop": (chainrule.RMSprop(lr=0.01, alpha=0.9, momentum=0.5, weight_decay=0.1),
                    torch.optim.RMSprop([t], lr=0.01, alpha=0.9, momentum=0.5,
                                        weight_decay=0.1)),
        "SGD-nesterov": (chainrule.SGD(lr=0.1, momentum=0.9, nesterov=True, weight_decay=0.1),
                         torch.optim.SGD([t], lr=0.1, momentum=0.9, nesterov=True,
                                         weight_decay=0.1)),
    }[name]
    for _ in range(3):
        g = rng.normal(size=p0.shape)
        net.grads[:] = g
        ours.step(net)
        t.grad = torch.tensor(g)
        theirs.step()
    assert ours.steps == 3
    np.testing.assert_allclose(net.params, t.detach().numpy(), rtol=1e-14, atol=1e-15)
    assert not np.allclose(net.params, p0)
