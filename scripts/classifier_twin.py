"""classifier_twin.py - the PyTorch twin of `vae classifier train`, for speed checks.

The same network (conv 3x3 32 stride 1, conv 3x3 64 stride 2, both padded by 1,
linear 128, linear 10; ReLU between; softmax cross-entropy), the same training
(Adam 1e-3, batch 128, a fresh shuffle every epoch, the last partial batch kept)
and the same timing: each epoch's training and its test accuracy, from the first
step to the last accuracy. Parameter names are the classifier's safetensors
names (conv1.weight, ...).

    /usr/bin/python3 scripts/classifier_twin.py [--data DIR] [--epochs 5] [--threads 1]

prints one line per epoch and a last line
    twin: E epochs, S s, test accuracy A%
"""
import argparse
import os
import sys
import time

import torch
from torch import nn
import torch.nn.functional as F

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from vae_twin import read_idx, load_split  # noqa: E402


class Classifier(nn.Module):
    def __init__(self, channels=1, side=28, classes=10, conv1=32, conv2=64, hidden=128):
        super().__init__()
        self.conv1 = nn.Conv2d(channels, conv1, 3, stride=1, padding=1)
        self.conv2 = nn.Conv2d(conv1, conv2, 3, stride=2, padding=1)
        half = (side + 2 - 3) // 2 + 1
        self.fc1 = nn.Linear(conv2 * half * half, hidden)
        self.fc2 = nn.Linear(hidden, classes)

    def forward(self, x):
        h = F.relu(self.conv1(x))
        h = F.relu(self.conv2(h))
        return self.fc2(F.relu(self.fc1(h.flatten(1))))


def load_labels(data, prefix):
    for name in (f"{prefix}-labels-idx1-ubyte", f"{prefix}-labels-idx1-ubyte.gz"):
        p = os.path.join(data, name)
        if os.path.exists(p):
            return read_idx(p).long()
    sys.exit(f"{data}: no {prefix} labels")


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--data", default="/usr/share/datasets/fashion-mnist")
    ap.add_argument("--epochs", type=int, default=5)
    ap.add_argument("--batch", type=int, default=128)
    ap.add_argument("--lr", type=float, default=1e-3)
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--seed", type=int, default=1)
    a = ap.parse_args()
    torch.set_num_threads(a.threads)
    torch.manual_seed(a.seed)
    xtr = load_split(a.data, "train").reshape(-1, 1, 28, 28)
    ytr = load_labels(a.data, "train")
    xte = load_split(a.data, "t10k").reshape(-1, 1, 28, 28)
    yte = load_labels(a.data, "t10k")
    model = Classifier()
    opt = torch.optim.Adam(model.parameters(), lr=a.lr)
    n = xtr.shape[0]
    t0 = time.time()
    acc = 0.0
    for e in range(1, a.epochs + 1):
        model.train()
        perm = torch.randperm(n)
        total, right = 0.0, 0
        for s in range(0, n, a.batch):
            idx = perm[s:s + a.batch]
            logits = model(xtr[idx])
            loss = F.cross_entropy(logits, ytr[idx])
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
            total += loss.item() * len(idx)
            right += (logits.argmax(1) == ytr[idx]).sum().item()
        model.eval()
        with torch.no_grad():
            pred = torch.cat([model(xte[s:s + 1000]).argmax(1) for s in range(0, xte.shape[0], 1000)])
        acc = (pred == yte).float().mean().item()
        print(f"epoch {e}/{a.epochs}  loss {total / n:.4f}  train accuracy {100 * right / n:.2f}%  "
              f"test accuracy {100 * acc:.2f}%  {time.time() - t0:.1f} s", flush=True)
    print(f"twin: {a.epochs} epochs, {time.time() - t0:.1f} s, test accuracy {100 * acc:.2f}%")


if __name__ == "__main__":
    main()
