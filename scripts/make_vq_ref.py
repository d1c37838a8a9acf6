"""make_vq_ref.py - writes tests/data/ref_vq.safetensors, the PyTorch fixture that
tests/test_vq_ref.c checks vae's VQ layer, VQ-VAE and PixelCNN prior against.

    /usr/bin/python3 scripts/make_vq_ref.py

Sections (tensor name prefixes):
  layer.*   the VQ layer alone (nn/vq.h) on a (B, D, H, W) batch z_e and a codebook: the
            nearest codes, z_q, ||z_e - z_q||^2 per image, and the gradients of
            sum(z_q_st * dout) + ||sg[z_e] - e||^2 + beta ||z_e - sg[e]||^2 (z_q_st the
            straight-through z_e + sg[z_q - z_e]) to z_e and to the codebook; then one EMA
            update from a non-trivial state (decay 0.9, smoothing 0.1).
  vqvae.*   a whole VQ-VAE (scripts/vq_twin.py's VQVAE; tensor names as vae's checkpoint:
            init.NAME): z_e, codes, z_q, logits, rec and VQ terms per image, the mean loss and
            every parameter's gradient, under the loss update.
  ema.*     the same model under EMA updates (decay 0.9): the loss and gradients (none to
            the codebook), and the codebook and EMA state after one step.
  maskA.*, maskB.*  a 5x5 mask-A and a 3x3 mask-B convolution (the PixelCNN's), weights
            given unmasked: output, and the gradients of sum(out * dout) to the input, the
            (unmasked) weight and the bias.
  prior.*   a PixelCNN (vq_twin.PixelCNN; init.NAME as vae's prior file) on fixed code
            grids: the logits, -log p per grid, the mean and every parameter's gradient.
  gprior.*  the same for the gated PixelCNN (vq_twin.GatedPixelCNN, 3 gated layers).

The codebooks are drawn so that each vector's nearest code is nearer than the next by a
margin (checked here): float rounding cannot change a code between PyTorch and C.
"""
import os
import sys

import torch
import torch.nn.functional as F

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import stio  # noqa: E402
from vq_twin import VQVAE, PixelCNN, GatedPixelCNN, causal_mask  # noqa: E402

MARGIN = 1e-3  # the least gap between a vector's nearest and second-nearest code distance

# the layer: 3 images, 4-D codes on a 2x3 grid, 5 codes
# and a Laplace smoothing large enough to show (the model's is 1e-5: below float tolerance)
L_B, L_D, L_H, L_W, L_K, L_BETA, L_DECAY, L_EPS = 3, 4, 2, 3, 5, 0.25, 0.9, 0.1
# the VQ-VAE: 1x12x10 images, conv 4,6 (12x10 -> 6x5 -> 3x2, output padding on the way
# back), 3-D codes, K = 6, batch 4
SHAPE, HIDDEN, CODE_DIM, K, BETA, DECAY, B = (1, 12, 10), (4, 6), 3, 6, 0.25, 0.9, 4
# the prior: K = 6 codes on a 3x4 grid, embedding 5, 7 channels, 2 mask-B layers, 3 grids
P_K, P_H, P_W, P_EMBED, P_CH, P_LAYERS, P_B = 6, 3, 4, 5, 7, 2, 3
# the mask layers: 2 images of 3 channels on 5x6, 4 output channels
M_B, M_C, M_H, M_W, M_OC = 2, 3, 5, 6, 4


def margin(ze, cb):
    """The least gap between each vector's two nearest code distances (in double)."""
    flat = ze.detach().double().permute(0, 2, 3, 1).reshape(-1, ze.shape[1])
    d = ((flat[:, None, :] - cb.detach().double()[None]) ** 2).sum(2)
    two = d.topk(2, dim=1, largest=False).values
    return (two[:, 1] - two[:, 0]).min().item()


def spread_codebook(ze, k, gen):
    """k codes near k of the encoder's vectors (so that several are chosen), redrawn until
    every vector's nearest code is clear by MARGIN."""
    flat = ze.detach().permute(0, 2, 3, 1).reshape(-1, ze.shape[1])
    for _ in range(1000):
        pick = torch.randperm(len(flat), generator=gen)[:k]
        cb = flat[pick] + 0.05 * torch.randn(k, flat.shape[1], generator=gen)
        if margin(ze, cb) > MARGIN:
            return cb
    raise SystemExit("no codebook with a clear nearest code for every vector")


def layer(out, meta):
    g = torch.Generator().manual_seed(1)
    ze = torch.randn(L_B, L_D, L_H, L_W, generator=g)
    cb = spread_codebook(ze, L_K, g)
    dout = torch.randn(L_B, L_D, L_H, L_W, generator=g)
    ze_p = ze.clone().requires_grad_(True)
    cb_p = cb.clone().requires_grad_(True)
    flat = ze_p.permute(0, 2, 3, 1).reshape(-1, L_D)
    codes = ((flat.detach()[:, None, :] - cb[None]) ** 2).sum(2).argmin(1)
    zq = cb_p[codes].reshape(L_B, L_H, L_W, L_D).permute(0, 3, 1, 2)
    err = ((ze_p.detach() - zq.detach()) ** 2).sum((1, 2, 3))
    zst = ze_p + (zq - ze_p).detach()
    loss = ((zst * dout).sum() + ((ze_p.detach() - zq) ** 2).sum()
            + L_BETA * ((ze_p - zq.detach()) ** 2).sum())
    loss.backward()
    # one EMA update from a state that is not the start's
    count0 = 0.5 + torch.rand(L_K, generator=g)
    sum0 = torch.randn(L_K, L_D, generator=g)
    n_k = torch.bincount(codes, minlength=L_K).float()
    s_k = torch.zeros(L_K, L_D).index_add_(0, codes, flat.detach())
    count1 = L_DECAY * count0 + (1 - L_DECAY) * n_k
    sum1 = L_DECAY * sum0 + (1 - L_DECAY) * s_k
    n = count1.sum()
    cb1 = sum1 / ((count1 + L_EPS) / (n + L_K * L_EPS) * n)[:, None]
    out.update({"layer.ze": ze, "layer.codebook": cb, "layer.dout": dout,
                "layer.codes": codes.reshape(L_B, L_H * L_W).float(), "layer.zq": zq.detach(),
                "layer.err": err, "layer.dze": ze_p.grad, "layer.dcodebook": cb_p.grad,
                "layer.count": n_k, "layer.sum": s_k,
                "layer.ema_count0": count0, "layer.ema_sum0": sum0,
                "layer.ema_count1": count1, "layer.ema_sum1": sum1, "layer.codebook1": cb1})
    meta["layer"] = ",".join(map(str, (L_B, L_D, L_H, L_W, L_K, L_BETA, L_DECAY, L_EPS)))
    print(f"layer: codes used {len(codes.unique())} of {L_K}, margin {margin(ze, cb):.3g}")


def model_case(out, name, ema, x, gen):
    torch.manual_seed(20261206 + ema)
    model = VQVAE(SHAPE, HIDDEN, CODE_DIM, K, BETA, ema, DECAY)
    with torch.no_grad():
        model.vq.codebook.copy_(spread_codebook(model.encode(x), K, gen))
        if ema:  # a state that is not the start's, so that the update's every term shows
            model.vq.ema_count.copy_(0.5 + torch.rand(K, generator=gen))
            model.vq.ema_sum.copy_(torch.randn(K, CODE_DIM, generator=gen))
        else:
            model.vq.ema_sum.copy_(model.vq.codebook)
    for pname, p in model.state_dict().items():
        out[f"{name}.init.{pname}"] = p.clone()
    ze, codes, zq, logits, rec, vq = model(x)
    loss = (rec + vq).mean()
    loss.backward()
    out.update({f"{name}.ze": ze.detach(), f"{name}.codes": codes.float(),
                f"{name}.zq": zq.detach(), f"{name}.logits": logits.detach(),
                f"{name}.rec": rec.detach(), f"{name}.vq": vq.detach(),
                f"{name}.loss": loss.detach().reshape(1)})
    for pname, p in model.named_parameters():
        if p.grad is not None:
            out[f"{name}.grad.{pname}"] = p.grad.clone()
    if ema:
        model.ema_update(ze, codes)
        for t in ("codebook", "ema_count", "ema_sum"):
            out[f"{name}.after.vq.{t}"] = getattr(model.vq, t).detach().clone()
    print(f"{name}: codes used {len(codes.unique())} of {K}, margin "
          f"{margin(ze, out[name + '.init.vq.codebook']):.3g}")


def masked(out, meta):
    g = torch.Generator().manual_seed(3)
    for name, k, type_b in (("maskA", 5, False), ("maskB", 3, True)):
        conv = torch.nn.Conv2d(M_C, M_OC, k, padding=k // 2)
        with torch.no_grad():  # every tap nonzero: the test must apply the mask itself
            conv.weight.copy_(torch.randn(conv.weight.shape, generator=g))
        x = torch.randn(M_B, M_C, M_H, M_W, generator=g).requires_grad_(True)
        y = F.conv2d(x, conv.weight * causal_mask(k, type_b), conv.bias, padding=k // 2)
        dout = torch.randn(y.shape, generator=g)
        (y * dout).sum().backward()
        out.update({f"{name}.x": x.detach(), f"{name}.weight": conv.weight.detach(),
                    f"{name}.bias": conv.bias.detach(), f"{name}.dout": dout,
                    f"{name}.out": y.detach(), f"{name}.dx": x.grad,
                    f"{name}.dweight": conv.weight.grad, f"{name}.dbias": conv.bias.grad})
        meta[name] = ",".join(map(str, (M_B, M_C, M_H, M_W, M_OC, k)))


def prior(out, meta, name="prior", gated=False, layers=P_LAYERS):
    torch.manual_seed(20261207 + gated)
    p = (GatedPixelCNN if gated else PixelCNN)(P_K, P_EMBED, P_CH, layers)
    for pname, t in p.state_dict().items():
        out[f"{name}.init.{pname}"] = t.clone()
    codes = torch.randint(P_K, (P_B, P_H, P_W))
    logits = p(codes)
    nll = F.cross_entropy(logits, codes, reduction="none").sum((1, 2))
    loss = nll.mean()
    loss.backward()
    out.update({f"{name}.codes": codes.reshape(P_B, -1).float(),
                f"{name}.logits": logits.detach(), f"{name}.nll": nll.detach(),
                f"{name}.loss": loss.detach().reshape(1)})
    for pname, t in p.named_parameters():
        out[f"{name}.grad.{pname}"] = t.grad.clone()
    meta[name] = ",".join(map(str, (P_K, P_H, P_W, P_EMBED, P_CH, layers, P_B, int(gated))))


def main():
    out, meta = {}, {"torch": torch.__version__}
    layer(out, meta)
    g = torch.Generator().manual_seed(2)
    x = torch.rand(B, SHAPE[0] * SHAPE[1] * SHAPE[2], generator=g)
    out["x"] = x
    model_case(out, "vqvae", False, x, g)
    model_case(out, "ema", True, x, g)
    meta["model"] = ",".join(map(str, SHAPE + HIDDEN + (CODE_DIM, K, BETA, DECAY, B)))
    masked(out, meta)
    prior(out, meta)
    prior(out, meta, "gprior", True, 3)
    path = os.path.join(os.path.dirname(__file__), "..", "tests", "data", "ref_vq.safetensors")
    stio.save_file(out, path, meta)
    print("wrote", os.path.normpath(path), len(out), "tensors")


if __name__ == "__main__":
    main()
