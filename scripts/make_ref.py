"""make_ref.py - writes tests/data/ref_small.safetensors, the PyTorch fixture
that tests/test_ref.c checks the C implementation against.

    /usr/bin/python3 scripts/make_ref.py

Fixed weights (PyTorch's default init, seeded), a batch x, noise eps for
three steps, and for step 1 the expected mu, logvar, z, logits, loss terms and
every parameter gradient; then the parameters after three Adam steps.
"""
import os
import sys

import torch

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import stio  # noqa: E402
from vae_twin import VAE, iwae_loss  # noqa: E402

C, H, W, HIDDEN, LATENT, B, STEPS = 1, 4, 5, (8, 6), 3, 5, 3
IWAE_K = 4


def main():
    torch.manual_seed(20261125)
    D = C * H * W
    model = VAE(D, HIDDEN, LATENT)
    with torch.no_grad():  # make one log-variance large, still inside the clamp
        model.fc_logvar.bias[0] = 2.0
    x = torch.rand(B, D)
    x[0, :4] = torch.tensor([0.0, 1.0, 0.0, 1.0])  # binary pixels too
    eps = [torch.randn(B, LATENT) for _ in range(STEPS)]
    out = {"x": x}
    for i, e in enumerate(eps):
        out[f"eps{i + 1}"] = e
    for name, p in model.state_dict().items():
        out[f"init.{name}"] = p.clone()

    # the IWAE loss (K samples per image) and its gradients at the initial weights
    eps_iw = torch.randn(B, IWAE_K, LATENT)
    loss = iwae_loss(model, x, eps_iw)
    loss.mean().backward()
    out.update({"iwae.eps": eps_iw, "iwae.loss": loss.detach()})
    for name, p in model.named_parameters():
        out[f"iwae.grad.{name}"] = p.grad.clone()
    model.zero_grad()

    opt = torch.optim.Adam(model.parameters(), lr=1e-2)  # large lr: steps visibly move
    for step in range(STEPS):
        mu, logvar, z, logits, rec, kl = model(x, eps[step])
        loss = (rec + kl).mean()
        opt.zero_grad()
        loss.backward()
        if step == 0:
            out.update(mu=mu, logvar=logvar, z=z, logits=logits, rec=rec, kl=kl,
                       loss=loss.reshape(1))
            for name, p in model.named_parameters():
                out[f"grad.{name}"] = p.grad.clone()
        opt.step()
    for name, p in model.state_dict().items():
        out[f"step{STEPS}.{name}"] = p.clone()
    meta = {"channels": C, "height": H, "width": W, "hidden": ",".join(map(str, HIDDEN)),
            "latent": LATENT, "batch": B, "steps": STEPS, "lr": 1e-2, "iwae_k": IWAE_K,
            "torch": torch.__version__}
    path = os.path.join(os.path.dirname(__file__), "..", "tests", "data", "ref_small.safetensors")
    stio.save_file(out, path, meta)
    print("wrote", os.path.normpath(path), len(out), "tensors")


if __name__ == "__main__":
    main()
