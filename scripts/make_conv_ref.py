"""make_conv_ref.py - writes tests/data/ref_conv.safetensors, the PyTorch
fixture that tests/test_conv.c checks the C convolution layers against.

    /usr/bin/python3 scripts/make_conv_ref.py

For each case: an input batch, nn.Conv2d / nn.ConvTranspose2d weights and
bias (PyTorch's default init, seeded), an upstream gradient dout, and the
expected output and gradients of sum(out * dout). Then a whole conv VAE
(vae_twin.ConvVAE, tensors "vae.*"): weights, a batch, noise, and the
expected mu, logvar, z, logits, loss terms and every parameter gradient of
the mean per-image loss.
"""
import os
import sys

import torch

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import stio  # noqa: E402
from vae_twin import ConvVAE  # noqa: E402

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
# Transposed layers with 16 output channels, whose forward takes oneDNN's
# kernels (conv_dnnl.c); drawn after the cases above and the VAE (their own
# seed), which stay as they were.
WIDE_CASES = {
    "dec16": (1, 16, 7, 7, 16, 4, 2, 1, 0),
    "oddt16": (1, 3, 5, 4, 16, 3, 2, 1, 1),
}
B = 3
VAE_SHAPE, VAE_CHANNELS, VAE_LATENT = (3, 7, 6), (3, 4), 2  # odd sizes: output padding


def main():
    torch.manual_seed(20261125)
    out, meta = {}, {"batch": B, "torch": torch.__version__}
    add_cases(CASES, out, meta)
    add_vae(out, meta)
    torch.manual_seed(20261207)
    add_cases(WIDE_CASES, out, meta)
    path = os.path.join(os.path.dirname(__file__), "..", "tests", "data", "ref_conv.safetensors")
    stio.save_file(out, path, meta)
    print("wrote", os.path.normpath(path), len(out), "tensors")


def add_cases(cases, out, meta):
    for name, (t, C, H, W, OC, K, S, P, OP) in cases.items():
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


def add_vae(out, meta):
    model = ConvVAE(VAE_SHAPE, VAE_CHANNELS, VAE_LATENT)
    for name, p in model.state_dict().items():
        out[f"vae.init.{name}"] = p.clone()
    D = VAE_SHAPE[0] * VAE_SHAPE[1] * VAE_SHAPE[2]
    x, eps = torch.rand(B, D), torch.randn(B, VAE_LATENT)
    mu, logvar, z, logits, rec, kl = model(x, eps)
    loss = (rec + kl).mean()
    loss.backward()
    out.update({"vae.x": x, "vae.eps": eps, "vae.mu": mu, "vae.logvar": logvar, "vae.z": z,
                "vae.logits": logits, "vae.rec": rec, "vae.kl": kl, "vae.loss": loss.reshape(1)})
    for name, p in model.named_parameters():
        out[f"vae.grad.{name}"] = p.grad.clone()
    meta["vae"] = ",".join(map(str, VAE_SHAPE + VAE_CHANNELS + (VAE_LATENT,)))


if __name__ == "__main__":
    main()
