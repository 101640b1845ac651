"""ART's SquareAttack (adversarial-robustness-toolbox 1.20.1), targeted, on pairs that
``benchmarks/attack.py`` exported: runs in ART's own environment and never imports olmp.

    /tmp/artenv/bin/python benchmarks/attack_art.py PAIRS.npz WEIGHTS.safetensors OUT.json

PAIRS.npz holds the pixel-space images ``x`` (N x C x H x W in [0, 1]), ``target``, the
dataset's ``mean`` and ``std``, ``eps``, ``budget``, ``seed``, ``p_init`` and ``model``.
ART's Square attack is untargeted by default; it is made targeted with its own ``loss``
(``max_{j != t} z_j - z_t`` on the logits) and ``adv_criterion`` (the target wins). Its
stripe initialisation is one query and each of its ``max_iter`` iterations one more, so
``max_iter = budget - 1``.
"""

from __future__ import annotations

import json
import sys
import time

import numpy as np
import torch
from safetensors.torch import load_file
from torch import nn


def lenet_300_100(shape):
    c, h, w = shape
    return nn.Sequential(
        nn.Flatten(), nn.Linear(c * h * w, 300), nn.ReLU(), nn.Linear(300, 100), nn.ReLU(),
        nn.Linear(100, 10),
    )  # fmt: skip


def lenet_5(shape):
    c, h, w = shape
    side_h, side_w = ((h - 4) // 2 - 4) // 2, ((w - 4) // 2 - 4) // 2
    return nn.Sequential(
        nn.Conv2d(c, 20, 5), nn.MaxPool2d(2), nn.Conv2d(20, 50, 5), nn.MaxPool2d(2),
        nn.Flatten(), nn.Linear(50 * side_h * side_w, 500), nn.ReLU(), nn.Linear(500, 10),
    )  # fmt: skip


def conv_small(shape):
    c, h, w = shape

    def block(c_in, c_out):
        return [nn.Conv2d(c_in, c_out, 3, padding=1), nn.ReLU(), nn.MaxPool2d(2)]

    return nn.Sequential(
        *block(c, 32), *block(32, 64), *block(64, 128), nn.Flatten(), nn.Dropout(0.3),
        nn.Linear(128 * (h // 8) * (w // 8), 256), nn.ReLU(), nn.Dropout(0.3),
        nn.Linear(256, 128), nn.ReLU(), nn.Linear(128, 10),
    )  # fmt: skip


#: The registry's models, rebuilt here layer for layer (the state dicts' keys must match).
MODELS = {"lenet-300-100": lenet_300_100, "lenet-5": lenet_5, "conv-small": conv_small}


class Normalised(nn.Module):
    def __init__(self, net, mean, std):
        super().__init__()
        self.net, self.mean, self.std = net, float(mean), float(std)

    def forward(self, x):
        return self.net((x - self.mean) / self.std)


def main(pairs_path: str, weights: str, out: str) -> None:
    from art.attacks.evasion import SquareAttack
    from art.estimators.classification import PyTorchClassifier

    torch.set_num_threads(1)
    data = np.load(pairs_path)
    x, target = data["x"].astype(np.float32), data["target"].astype(int)
    eps, budget, seed = float(data["eps"]), int(data["budget"]), int(data["seed"])
    net = MODELS[str(data["model"])](x.shape[1:])
    state = {k: v for k, v in load_file(weights).items() if not k.endswith("__mask")}
    net.load_state_dict(state)
    model = Normalised(net, data["mean"], data["std"]).eval()
    classifier = PyTorchClassifier(
        model, nn.CrossEntropyLoss(), input_shape=x.shape[1:], nb_classes=10, clip_values=(0, 1)
    )

    def loss(xs, y):
        z = classifier.predict(xs, batch_size=len(xs))
        t = np.argmax(y, axis=1)
        zt = z[np.arange(len(z)), t]
        z[np.arange(len(z)), t] = -np.inf
        return z.max(axis=1) - zt

    def wins(y_pred, y):
        return np.argmax(y_pred, axis=1) == np.argmax(y, axis=1)

    np.random.seed(seed)
    attack = SquareAttack(
        classifier, norm=np.inf, adv_criterion=wins, loss=loss, max_iter=budget - 1, eps=eps,
        p_init=float(data["p_init"]), nb_restarts=1, batch_size=len(x), verbose=False,
    )  # fmt: skip
    started = time.perf_counter()
    adv = attack.generate(x, np.eye(10)[target])
    seconds = time.perf_counter() - started
    linf = np.abs(adv.astype(np.float64) - x).reshape(len(x), -1).max(axis=1)
    assert (linf <= eps + 1e-6).all() and adv.min() >= 0 and adv.max() <= 1
    with torch.no_grad():
        predicted = model(torch.from_numpy(adv)).argmax(1).numpy()
    success = predicted == target
    with open(out, "w") as f:
        json.dump(
            {
                "success": success.tolist(),
                "success_rate": float(success.mean()),
                "seconds": seconds,
                "art": __import__("art").__version__,
            },
            f,
        )


if __name__ == "__main__":
    if len(sys.argv) != 4:  # --help, or arguments missing
        print("usage: python benchmarks/attack_art.py PAIRS.npz WEIGHTS OUT.json", file=sys.stderr)
        sys.exit(2)
    main(*sys.argv[1:4])
