"""make_lik_ref.py - writes tests/data/ref_lik.safetensors, the PyTorch
fixture that tests/test_lik.c checks the likelihoods against, computed with
torch.distributions (an implementation independent of ours).

    /usr/bin/python3 scripts/make_lik_ref.py

For decoder outputs y (B, D) and targets x in [0,1]: the per-image negative
log densities and their gradients (of the batch mean) for the continuous
Bernoulli (y logits) and the Gaussian (y means; log sigma per pixel).
"""
import os
import sys

import torch
from torch.distributions import ContinuousBernoulli, Normal

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import stio  # noqa: E402

B, D = 4, 9


def main():
    torch.set_default_dtype(torch.float64)  # torch's float32 normaliser loses 1e-3 at logit 12
    torch.manual_seed(20261125)
    x = torch.rand(B, D)
    x[0, :3] = torch.tensor([0.0, 1.0, 0.5])
    out = {"x": x}
    # |logit| <= 12: torch clamps probabilities to [eps, 1 - eps] before its
    # normaliser, so for large logits its density is not ours (nor normalised;
    # tests/test_grad.c integrates ours)
    y = (torch.randn(B, D) * 3).clamp(-12, 12).requires_grad_()
    y.data[1, :4] = torch.tensor([0.0, 1e-3, -0.2, 12.0])  # near 0 (series) and large
    nll = -ContinuousBernoulli(logits=y).log_prob(x).sum(1)
    nll.mean().backward()
    out.update({"cb.logits": y.detach(), "cb.nll": nll.detach(), "cb.grad": y.grad})

    mean = torch.randn(B, D).requires_grad_()
    log_sigma = (torch.rand(D) * 2 - 1.5).requires_grad_()
    nll = -Normal(mean, log_sigma.exp()).log_prob(x).sum(1)
    nll.mean().backward()
    out.update({"gauss.mean": mean.detach(), "gauss.log_sigma": log_sigma.detach(),
                "gauss.nll": nll.detach(), "gauss.grad_mean": mean.grad,
                "gauss.grad_log_sigma": log_sigma.grad})
    path = os.path.join(os.path.dirname(__file__), "..", "tests", "data", "ref_lik.safetensors")
    stio.save_file(out, path, {"batch": B, "pixels": D, "torch": torch.__version__})
    print("wrote", os.path.normpath(path), len(out), "tensors")


if __name__ == "__main__":
    main()
