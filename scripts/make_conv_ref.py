"""make_conv_ref.py - writes tests/data/ref_conv.safetensors, the PyTorch
fixture that tests/test_conv.c checks the C convolution layers against.

    /usr/bin/python3 scripts/make_conv_ref.py

For each case: an input batch, nn.Conv2d / nn.ConvTranspose2d weights and
bias (PyTorch's default init, seeded), an upstream gradient dout, and the
expected output and gradients of sum(out * dout).
"""
import os
import sys

import torch

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import stio  # noqa: E402

# name: (transposed, C, H, W, OC, K, S, P, OP) - the conv VAE's shapes
# (28 -> 14 -> 7 and back) with fewer channels, and odd sizes.
CASES = {
    "enc1": (0, 1, 28, 28, 8, 4, 2, 1, 0),
    "enc2": (0, 8, 14, 14, 16, 4, 2, 1, 0),
    "dec1": (1, 16, 7, 7, 8, 4, 2, 1, 0),
    "dec2": (1, 8, 14, 14, 1, 4, 2, 1, 0),
    "odd": (0, 3, 9, 6, 2, 3, 2, 1, 0),
    "oddt": (1, 3, 5, 4, 2, 3, 2, 1, 1),
}
B = 3


def main():
    torch.manual_seed(20261125)
    out, meta = {}, {"batch": B, "torch": torch.__version__}
    for name, (t, C, H, W, OC, K, S, P, OP) in CASES.items():
        if t:
            layer = torch.nn.ConvTranspose2d(C, OC, K, S, P, output_padding=OP)
        else:
            layer = torch.nn.Conv2d(C, OC, K, S, P)
        x = torch.rand(B, C, H, W, requires_grad=True)
        y = layer(x)
        dout = torch.randn_like(y)
        (y * dout).sum().backward()
        out.update({f"{name}.x": x, f"{name}.weight": layer.weight, f"{name}.bias": layer.bias,
                    f"{name}.dout": dout, f"{name}.out": y, f"{name}.dx": x.grad,
                    f"{name}.dweight": layer.weight.grad, f"{name}.dbias": layer.bias.grad})
        meta[name] = ",".join(map(str, (t, C, H, W, OC, K, S, P, OP)))
    path = os.path.join(os.path.dirname(__file__), "..", "tests", "data", "ref_conv.safetensors")
    stio.save_file(out, path, meta)
    print("wrote", os.path.normpath(path), len(out), "tensors")


if __name__ == "__main__":
    main()
