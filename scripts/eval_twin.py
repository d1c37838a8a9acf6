"""eval_twin.py - `vae eval`'s computation in PyTorch, for checking and timing.

Loads a vae checkpoint (model.safetensors) into the twin module of
vae_twin.py and evaluates the test split as `vae eval` does: per image, k
samples z ~ q(z|x) through the decoder in batches of about --batch rows; the
importance-sampled log p(x) = logsumexp_i(log p(x|z_i) + log p(z_i) - log q(z_i|x))
- log k in float64; the ELBO with its reconstruction term averaged over the same
samples and the closed-form KL; active units; the squared error of the decoded
posterior mean. Prints one JSON object like `vae eval --json` (no per-dimension
lists). The noise is torch's, so the estimates agree with vae's within Monte
Carlo error, not bit for bit.

    /usr/bin/python3 scripts/eval_twin.py --model M [--data DIR] [--k 1000] [-n 0]
        [--threads 1] [--batch 1000] [--seed 1]
"""
import argparse
import json
import math
import os
import sys
import time

import torch
import torch.nn.functional as F

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import stio  # noqa: E402
from vae_twin import LOGVAR_MIN, LOGVAR_MAX, VAE, load_split  # noqa: E402


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--model", required=True)
    ap.add_argument("--data", default="/usr/share/datasets/fashion-mnist")
    ap.add_argument("--k", type=int, default=1000)
    ap.add_argument("-n", type=int, default=0)
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--batch", type=int, default=1000, help="decoder rows per batch")
    ap.add_argument("--seed", type=int, default=1)
    a = ap.parse_args()
    torch.set_num_threads(a.threads)
    torch.manual_seed(a.seed)

    tensors, meta = stio.load_file(a.model)
    hidden = [int(h) for h in meta.get("vae.hidden", "400").split(",") if h and h != "none"]
    latent = int(meta["vae.latent"])
    x_all = load_split(a.data, "t10k")
    if a.n:
        x_all = x_all[:a.n]
    n, D = x_all.shape
    model = VAE(D, hidden, latent)
    model.load_state_dict(tensors)
    model.eval()

    k, d = a.k, latent
    per = max(1, a.batch // k)  # images per decoder batch: per * k rows
    t0 = time.perf_counter()
    lp_sum = rec_sum = kl_sum = sse_sum = 0.0
    mus = []
    with torch.no_grad():
        for i in range(0, n, per):
            x = x_all[i:i + per]
            b = x.shape[0]
            mu, lv = model.encode(x)
            lv = lv.clamp(LOGVAR_MIN, LOGVAR_MAX)
            mus.append(mu)
            kl_sum += (0.5 * (mu.pow(2) + lv.exp() - 1 - lv).sum(1)).double().sum().item()
            sse_sum += (x - torch.sigmoid(model.decode(mu))).double().pow(2).sum().item()
            # k samples per image, decoded k rows at a time (or `per` images' worth)
            eps = torch.randn(b, k, d)
            z = mu[:, None, :] + torch.exp(0.5 * lv)[:, None, :] * eps
            logits = model.decode(z.reshape(b * k, d)).reshape(b, k, D)
            rec = F.binary_cross_entropy_with_logits(
                logits, x[:, None, :].expand(b, k, D), reduction="none").sum(2)
            # log p(z) - log q(z|x) = -1/2 sum_j (z^2 - eps^2 - logvar)
            ratio = -0.5 * (z.pow(2) - eps.pow(2) - lv[:, None, :]).sum(2)
            logw = (ratio - rec).double()
            lp_sum += (torch.logsumexp(logw, 1) - math.log(k)).sum().item()
            rec_sum += rec.double().mean(1).sum().item()
    secs = time.perf_counter() - t0
    var = torch.cat(mus).double().var(0, unbiased=False)
    out = {"n": n, "k": k, "threads": a.threads, "neg_elbo": (rec_sum + kl_sum) / n,
           "rec": rec_sum / n, "kl": kl_sum / n, "nll": -lp_sum / n, "mse": sse_sum / n / D,
           "sse": sse_sum / n, "active_units": int((var > 0.01).sum()), "seconds": round(secs, 3)}
    print(json.dumps(out))


if __name__ == "__main__":
    main()
