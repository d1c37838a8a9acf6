"""make_hvae_ref.py - writes tests/data/ref_hvae.safetensors, the PyTorch fixture
that tests/test_hvae_ref.c checks vae's hierarchical VAE (--model hvae) against.

    /usr/bin/python3 scripts/make_hvae_ref.py

For the standard prior on z2 and the VampPrior (K pseudo-inputs): fixed weights
(PyTorch's default init, seeded), a batch x, noise eps2 (of z2) and eps1 (of z1),
and the expected z2, z1, logits, reconstruction, regulariser and evaluation
log-ratio per image, the loss (the mean of rec + kl) and every parameter
gradient. The model is vae_twin.HVAE:

  z2 = mu2(x) + sigma2(x) eps2,  z1 = mu1(x, z2) + sigma1(x, z2) eps1
  kl = log q(z2|x) - log p(z2)   (closed form against N(0, I); one sample with vamp)
       + KL(q(z1|x,z2) || p(z1|z2))   (closed form given z2)
  log-ratio = log p(z2) + log p(z1|z2) - log q(z2|x) - log q(z1|x,z2)
"""
import os
import sys

import torch

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import stio  # noqa: E402
from vae_twin import HVAE  # noqa: E402

C, H, W, HIDDEN, Z1, Z2, B, K = 1, 4, 5, (8, 6), 2, 3, 5, 3
CASES = {"standard": 0, "vamp": K}


def main():
    out = {}
    torch.manual_seed(20261206)
    x = torch.rand(B, C * H * W)
    out["x"] = x
    for name, k in CASES.items():
        model = HVAE(C * H * W, HIDDEN, (Z1, Z2), k, (C, H, W))
        eps2, eps1 = torch.randn(B, Z2), torch.randn(B, Z1)
        for pname, p in model.state_dict().items():
            out[f"{name}.init.{pname}"] = p.clone()
        z2, z1, logits, rec, kl, ratio = model(x, eps2, eps1)
        loss = (rec + kl).mean()
        loss.backward()
        out.update({f"{name}.eps2": eps2, f"{name}.eps1": eps1, f"{name}.z2": z2.detach(),
                    f"{name}.z1": z1.detach(), f"{name}.logits": logits.detach(),
                    f"{name}.rec": rec.detach(), f"{name}.kl": kl.detach(),
                    f"{name}.log_ratio": ratio.detach(), f"{name}.loss": loss.detach().reshape(1)})
        for pname, p in model.named_parameters():
            out[f"{name}.grad.{pname}"] = p.grad.clone()
    meta = {"channels": C, "height": H, "width": W, "hidden": ",".join(map(str, HIDDEN)),
            "latent": Z2, "latent1": Z1, "batch": B, "vamp_k": K, "torch": torch.__version__}
    path = os.path.join(os.path.dirname(__file__), "..", "tests", "data", "ref_hvae.safetensors")
    stio.save_file(out, path, meta)
    print("wrote", os.path.normpath(path), len(out), "tensors")


if __name__ == "__main__":
    main()
