"""The beginner's tutorial on chainrule's engine (2-2-1 sigmoid, MSE, per-sample SGD): gender
from centered weight and height. Prints what `chainrule demo` prints, digit for digit."""
import time, numpy as np  # noqa: E401
import chainrule

people = [("youge", -2, 5, 1), ("share", -5, -2, 1), ("naive", -23, -11, 0), ("beyes", 30, 8, 0)]
newcomers = [("Emily", -7, -3), ("Frank", 20, 2)]
X = np.array([[w, h] for _, w, h, _ in people], dtype=float)
Y = np.array([[g] for *_, g in people], dtype=float)
lr, epochs, seed = 0.1, 1000, 13
net = chainrule.Network(2, [(2, "sigmoid"), (1, "sigmoid")], loss="mse")
net.initialize("normal", seed=seed)  # every weight and bias from N(0, 1)
sgd = chainrule.SGD(lr=lr)
print("chainrule demo: the tutorial's 2-2-1 sigmoid network, MSE loss, per-sample SGD")
print(f"(learning rate {lr}, {epochs} epochs, weights and biases from N(0, 1) with seed {seed})\n")
start, losses = time.perf_counter(), []
for epoch in range(epochs):
    for x, y in zip(X, Y):  # one update per person, in table order
        net.zero_grad()
        net.forward(x[None])
        net.backward(y[None])
        sgd.step(net)
    if epoch % 10 == 0:
        net.forward(X)
        losses.append((epoch, net.loss(Y)))
net.forward(X)
final, ms = net.loss(Y), (time.perf_counter() - start) * 1e3
print("\n".join(f"Epoch {e} loss: {v:.3f}" for e, v in losses) + f"\n\nFinal loss {final:.6f} after {epochs} epochs ({4 * epochs} SGD "
      f"steps, trained in {ms:.2f} ms)\n")
print("Predictions: probability of gender 1, label 1 when it is at least 0.5")
print(f"  {'name':<6} {'weight':>6} {'height':>6} {'p(1)':>9} {'label':>6} {'true':>6}")
for name, w, h, *g in people + newcomers:
    p = net.forward(np.array([[w, h]], dtype=float))[0, 0]
    truth = f"{g[0]:>6}" + ("" if int(p >= 0.5) == g[0] else "  (wrong)") if g else f"{'new':>6}"
    print(f"  {name:<6} {w:>6} {h:>6} {p:>9.6f} {int(p >= 0.5):>6} {truth}")
right = sum(int(net.forward(X[i:i + 1])[0, 0] >= 0.5) == people[i][3] for i in range(4))
print(f"\n{right} of 4 training people classified correctly; " + (
    "converged (final loss < 0.01)." if final < 0.01 else
    "did NOT converge (final loss >= 0.01): try another --seed."))
