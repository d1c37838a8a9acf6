"""make_prior_ref.py - writes tests/data/ref_prior.safetensors, the PyTorch
fixture that tests/test_prior_ref.c checks vae's gated layers and VampPrior
against.

    /usr/bin/python3 scripts/make_prior_ref.py

The members are vae_twin.RichVAE's (the twin that bench/bench_members.sh
trains): for each case below, fixed weights (PyTorch's default init, seeded),
a batch x, noise eps, and the expected z, logits, reconstruction and KL term
per image, the loss and every parameter gradient. The pseudo-inputs are drawn
from [-0.2, 1.2] rather than vae's N(0.05, 0.01^2) start, so that the clamp to
[0, 1] (and its zero gradient outside) is exercised too.
"""
import os
import sys

import torch

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import stio  # noqa: E402
from vae_twin import RichVAE  # noqa: E402

C, H, W, HIDDEN, LATENT, B, K, STEPS = 1, 4, 5, (8, 6), 3, 5, 4, 2
# name: (activation, VampPrior K, flow); test_prior_ref.c has the same table
CASES = {"gated": ("gated", 0, "none"), "vamp": ("relu", K, "none"),
         "gated_vamp": ("gated", K, "none"), "vamp_planar": ("relu", K, "planar")}


def main():
    out = {}
    torch.manual_seed(20261206)
    x = torch.rand(B, C * H * W)
    out["x"] = x
    for name, (act, k, flow) in CASES.items():
        model = RichVAE(C * H * W, HIDDEN, LATENT, activation=act, vamp_k=k, flow=flow,
                        flow_steps=STEPS if flow != "none" else 0, shape=(C, H, W))
        if k:
            with torch.no_grad():
                model.prior.pseudo_inputs.uniform_(-0.2, 1.2)
        eps = torch.randn(B, LATENT)
        for pname, p in model.state_dict().items():
            out[f"{name}.init.{pname}"] = p.clone()
        _, _, z, logits, rec, kl = model(x, eps)
        loss = (rec + kl).mean()
        loss.backward()
        out.update({f"{name}.eps": eps, f"{name}.z": z.detach(), f"{name}.logits": logits.detach(),
                    f"{name}.rec": rec.detach(), f"{name}.kl": kl.detach(),
                    f"{name}.loss": loss.detach().reshape(1)})
        for pname, p in model.named_parameters():
            out[f"{name}.grad.{pname}"] = p.grad.clone()
    meta = {"channels": C, "height": H, "width": W, "hidden": ",".join(map(str, HIDDEN)),
            "latent": LATENT, "batch": B, "vamp_k": K, "flow_steps": STEPS,
            "torch": torch.__version__}
    path = os.path.join(os.path.dirname(__file__), "..", "tests", "data", "ref_prior.safetensors")
    stio.save_file(out, path, meta)
    print("wrote", os.path.normpath(path), len(out), "tensors")


if __name__ == "__main__":
    main()
