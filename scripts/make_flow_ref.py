"""make_flow_ref.py - writes tests/data/ref_flow.safetensors, the PyTorch fixture
that tests/test_flow_ref.c checks vae's flows in the posterior against.

    /usr/bin/python3 scripts/make_flow_ref.py

For each flow (planar, householder): fixed weights (PyTorch's default init,
seeded; fc_flow's parameters per image after fc_mu and fc_logvar), a batch x,
noise eps, and the expected z_T, reconstruction and KL estimate per image, the
loss and every parameter gradient. The flows as vae's src/nn/flow.h defines them:

  planar:      z' = z + u^ tanh(w.z + b), u^ = u + (m(w.u) - w.u) w / |w|^2,
               m(a) = -1 + softplus(a); log|det| = log|1 + (1 - tanh^2) w.u^|
  householder: z' = z - 2 (v.z) v / |v|^2; log|det| = 0
  KL estimate: KL(q_0 || N(0, I)) in closed form + log p(z_0) - log p(z_T)
               - sum log|det| (the mean of log q_0(z_0|x) - sum log|det| - log p(z_T)):
               sum (mu^2 + e^logvar - 1 - logvar + z_T^2 - z_0^2) / 2 - sum log|det|
"""
import os
import sys

import torch
from torch import nn
import torch.nn.functional as F

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import stio  # noqa: E402
from vae_twin import VAE, LOGVAR_MIN, LOGVAR_MAX  # noqa: E402

C, H, W, HIDDEN, LATENT, B, STEPS = 1, 4, 5, (8, 6), 3, 5, 4
EPS = 1e-12  # added to |w|^2 and |v|^2, as flow.c does
FLOWS = {"planar": 1, "householder": 2}  # vae_flow's values


def step_params(flow, d):
    return 2 * d + 1 if flow == "planar" else d


class FlowVAE(VAE):
    def __init__(self, flow):
        super().__init__(C * H * W, HIDDEN, LATENT)
        self.flow = flow
        self.fc_flow = nn.Linear(HIDDEN[-1], STEPS * step_params(flow, LATENT))

    def encode_flow(self, x):
        for layer in self.encoder:
            x = F.relu(layer(x))
        return self.fc_mu(x), self.fc_logvar(x), self.fc_flow(x)

    def forward(self, x, eps):
        mu, logvar, p = self.encode_flow(x)
        lv = logvar.clamp(LOGVAR_MIN, LOGVAR_MAX)
        z = z0 = mu + torch.exp(0.5 * lv) * eps
        d, P = LATENT, step_params(self.flow, LATENT)
        logdet = torch.zeros(len(x))
        for t in range(STEPS):
            q = p[:, t * P:(t + 1) * P]
            if self.flow == "planar":
                u, w, b = q[:, :d], q[:, d:2 * d], q[:, 2 * d]
                wu = (w * u).sum(1)
                ww = (w * w).sum(1) + EPS
                uh = u + ((-1 + F.softplus(wu) - wu) / ww)[:, None] * w
                h = torch.tanh((w * z).sum(1) + b)
                z = z + uh * h[:, None]
                logdet = logdet + torch.log((1 + (1 - h * h) * (w * uh).sum(1)).abs())
            else:
                v = q
                z = z - (2 * (v * z).sum(1) / ((v * v).sum(1) + EPS))[:, None] * v
        logits = self.decode(z)
        rec = self.rec(logits, x)
        kl = 0.5 * (mu ** 2 + lv.exp() - 1 - lv + z ** 2 - z0 ** 2).sum(1) - logdet
        return z, logits, rec, kl


def main():
    out = {}
    torch.manual_seed(20261205)
    x = torch.rand(B, C * H * W)
    out["x"] = x
    for name in FLOWS:
        model = FlowVAE(name)
        eps = torch.randn(B, LATENT)
        for pname, p in model.state_dict().items():
            out[f"{name}.init.{pname}"] = p.clone()
        z, logits, rec, kl = model(x, eps)
        loss = (rec + kl).mean()
        loss.backward()
        out.update({f"{name}.eps": eps, f"{name}.z": z.detach(), f"{name}.logits": logits.detach(),
                    f"{name}.rec": rec.detach(), f"{name}.kl": kl.detach(),
                    f"{name}.loss": loss.detach().reshape(1)})
        for pname, p in model.named_parameters():
            out[f"{name}.grad.{pname}"] = p.grad.clone()
    meta = {"channels": C, "height": H, "width": W, "hidden": ",".join(map(str, HIDDEN)),
            "latent": LATENT, "batch": B, "flow_steps": STEPS, "torch": torch.__version__}
    path = os.path.join(os.path.dirname(__file__), "..", "tests", "data", "ref_flow.safetensors")
    stio.save_file(out, path, meta)
    print("wrote", os.path.normpath(path), len(out), "tensors")


if __name__ == "__main__":
    main()
