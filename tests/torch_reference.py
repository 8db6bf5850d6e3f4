#!/usr/bin/python3
"""Trains a network with PyTorch exactly as chainrule's trainer does (float64, no shuffling,
the same starting weights), for tests/torch_crosscheck_test.cpp.

Usage: torch_reference.py SPEC.json RESULT.json
SPEC: inputs, layers [{units, activation}], loss, optimizer {kind, lr, momentum, nesterov,
weight_decay}, epochs, batch, X, Y (lists of rows), params (chainrule's flat buffer: per layer the
(out, in) weight row by row, then the bias). RESULT: {"params": [...]} in the same layout.
"""
import json
import sys

import torch

ACTIVATIONS = {
    "sigmoid": torch.nn.Sigmoid, "tanh": torch.nn.Tanh, "relu": torch.nn.ReLU,
    "leaky_relu": torch.nn.LeakyReLU, "identity": torch.nn.Identity,
}


def main(spec_path, result_path):
    spec = json.load(open(spec_path))
    torch.set_default_dtype(torch.float64)
    modules, linears, fan_in = [], [], spec["inputs"]
    for i, layer in enumerate(spec["layers"]):
        linear = torch.nn.Linear(fan_in, layer["units"])
        linears.append(linear)
        modules.append(linear)
        last = i == len(spec["layers"]) - 1
        if not last:  # the output activation is part of the loss (fused) or applied below
            modules.append(ACTIVATIONS[layer["activation"]]())
        fan_in = layer["units"]
    net = torch.nn.Sequential(*modules)
    flat = torch.tensor(spec["params"])
    offset = 0
    with torch.no_grad():
        for linear in linears:
            n = linear.weight.numel()
            linear.weight.copy_(flat[offset:offset + n].reshape(linear.weight.shape))
            offset += n
            linear.bias.copy_(flat[offset:offset + linear.bias.numel()])
            offset += linear.bias.numel()

    out_act = spec["layers"][-1]["activation"]
    loss_name = spec["loss"]
    if loss_name == "softmax_cross_entropy":
        loss_fn = lambda z, y: torch.nn.functional.cross_entropy(z, y.argmax(dim=1))
    elif loss_name == "binary_cross_entropy":
        loss_fn = torch.nn.functional.binary_cross_entropy_with_logits
    else:
        act = ACTIVATIONS[out_act]() if out_act != "softmax" else torch.nn.Softmax(dim=1)
        loss_fn = lambda z, y: torch.nn.functional.mse_loss(act(z), y)

    o = spec["optimizer"]
    kind = o["kind"]
    if kind == "sgd":
        opt = torch.optim.SGD(net.parameters(), lr=o["lr"], momentum=o["momentum"],
                              nesterov=o["nesterov"], weight_decay=o["weight_decay"])
    elif kind == "adam":
        opt = torch.optim.Adam(net.parameters(), lr=o["lr"], weight_decay=o["weight_decay"])
    elif kind == "adamw":
        opt = torch.optim.AdamW(net.parameters(), lr=o["lr"], weight_decay=o["weight_decay"])
    elif kind == "rmsprop":
        opt = torch.optim.RMSprop(net.parameters(), lr=o["lr"], momentum=o["momentum"],
                                  weight_decay=o["weight_decay"])
    else:
        raise SystemExit("unknown optimizer " + kind)

    X, Y = torch.tensor(spec["X"]), torch.tensor(spec["Y"])
    batch = spec["batch"]
    for _ in range(spec["epochs"]):
        for first in range(0, len(X), batch):
            opt.zero_grad()
            loss = loss_fn(net(X[first:first + batch]), Y[first:first + batch])
            loss.backward()
            opt.step()

    params = []
    for linear in linears:
        params += linear.weight.detach().reshape(-1).tolist() + linear.bias.detach().tolist()
    json.dump({"params": params}, open(result_path, "w"))


if __name__ == "__main__":
    main(*sys.argv[1:])
