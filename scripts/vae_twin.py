"""vae_twin.py - the PyTorch twin of vae's MLP VAE, for parity and speed checks.

The module's parameter names and shapes are those of vae's checkpoints, so
    model.load_state_dict(stio.load_file("model.safetensors")[0])
works (with the safetensors package: safetensors.torch.load_file).

    /usr/bin/python3 scripts/vae_twin.py [--data DIR] [--epochs 10] [--threads 1]
trains the default model exactly as `vae train` does (grey-level Bernoulli,
Adam 1e-3, batch 128, mean per-image loss, last partial batch kept) and
prints per-epoch test negative ELBO in nats per image.
"""
import argparse
import gzip
import math
import os
import struct
import sys
import time

import torch
from torch import nn
import torch.nn.functional as F

LOGVAR_MIN, LOGVAR_MAX = -30.0, 20.0
LOG_SIGMA_MIN, LOG_SIGMA_MAX = -7.0, 5.0
HALF_LOG_2PI = 0.5 * math.log(2 * math.pi)


def cb_log_norm(eta):
    """log C of the continuous Bernoulli in its logit, as vae computes it."""
    a = eta.abs()
    safe = a.clamp(min=1e-2)
    exact = safe.log() + torch.log1p(torch.exp(-safe)) - torch.log(-torch.expm1(-safe))
    series = math.log(2) + eta ** 2 / 12 - 7 * eta ** 4 / 1440
    return torch.where(a < 1e-2, series, exact)


class VAE(nn.Module):
    def __init__(self, D=784, hidden=(400,), latent=20, likelihood="bernoulli", sigma=0.1,
                 sigma_mode="fixed", model="vae", n_classes=0):
        """n_classes > 0 (cvae): the one-hot label joins the input of the first
        encoder layer and of the first decoder layer."""
        super().__init__()
        self.set_likelihood(D, likelihood, sigma, sigma_mode)
        C = n_classes
        widths = [D] + list(hidden)
        self.encoder = nn.ModuleList(nn.Linear(a + (C if i == 0 else 0), b)
                                     for i, (a, b) in enumerate(zip(widths, widths[1:])))
        self.set_head(widths[-1] + (C if not hidden else 0), latent, model)
        back = [latent] + list(reversed(hidden)) + [D]
        self.decoder = nn.ModuleList(nn.Linear(a + (C if i == 0 else 0), b)
                                     for i, (a, b) in enumerate(zip(back, back[1:])))

    def set_head(self, width, latent, model):
        """vae, iwae: fc_mu and fc_logvar; the autoencoders (ae, sparse-ae, dae): fc_code."""
        self.model = model
        self.deterministic = model in ("ae", "sparse-ae", "dae")
        if not self.deterministic:
            self.fc_mu = nn.Linear(width, latent)
            self.fc_logvar = nn.Linear(width, latent)
        else:
            self.fc_code = nn.Linear(width, latent)

    def head(self, h):
        if not self.deterministic:
            return self.fc_mu(h), self.fc_logvar(h)
        code = self.fc_code(h)
        return code, torch.zeros_like(code)

    def set_likelihood(self, D, likelihood, sigma, sigma_mode):
        """p(x|z): bernoulli, gaussian (sigma fixed, learned or learned-pixel:
        a log_sigma parameter of 1 or D values) or continuous-bernoulli."""
        self.likelihood = likelihood
        if likelihood == "gaussian" and sigma_mode != "fixed":
            n = D if sigma_mode == "learned-pixel" else 1
            self.log_sigma = nn.Parameter(torch.full((n,), math.log(sigma)))
        else:
            self.log_sigma = torch.tensor([math.log(sigma)])

    def rec(self, out, x):
        """Negative log density of x per image, from the decoder output."""
        if self.likelihood == "gaussian":
            ls = self.log_sigma.clamp(LOG_SIGMA_MIN, LOG_SIGMA_MAX)
            return (HALF_LOG_2PI + ls + 0.5 * ((x - out) * torch.exp(-ls)) ** 2).sum(1)
        bce = F.binary_cross_entropy_with_logits(out, x, reduction="none").sum(1)
        if self.likelihood == "continuous-bernoulli":
            return bce - cb_log_norm(out).sum(1)
        return bce

    def encode(self, x):
        for layer in self.encoder:
            x = F.relu(layer(x))
        return self.head(x)

    def decode(self, z):
        for layer in self.decoder[:-1]:
            z = F.relu(layer(z))
        return self.decoder[-1](z)  # logits

    def forward(self, x, eps):
        """x -> (mu, logvar, z, decoder output, rec, kl) per image; for the
        autoencoders z is the code and kl their regulariser (sum |code| for
        sparse-ae, else 0). The DAE's corruption is the caller's."""
        mu, logvar = self.encode(x)
        if self.deterministic:
            logits = self.decode(mu)
            reg = mu.abs().sum(1) if self.model == "sparse-ae" else torch.zeros(len(x))
            return mu, logvar, mu, logits, self.rec(logits, x), reg
        lv = logvar.clamp(LOGVAR_MIN, LOGVAR_MAX)
        z = mu + torch.exp(0.5 * lv) * eps
        logits = self.decode(z)
        rec = self.rec(logits, x)
        kl = 0.5 * (mu.pow(2) + lv.exp() - 1 - lv).sum(1)
        return mu, logvar, z, logits, rec, kl


def iwae_loss(model, x, eps):
    """The negative IWAE bound per image, log K - logsumexp_i log w_i, for
    noise eps (B, K, d): log w = log p(x|z) + log p(z) - log q(z|x)."""
    B, K, d = eps.shape
    mu, logvar = model.encode(x)
    lv = logvar.clamp(LOGVAR_MIN, LOGVAR_MAX)
    z = mu[:, None, :] + torch.exp(0.5 * lv)[:, None, :] * eps
    out = model.decode(z.reshape(B * K, d))
    rec = model.rec(out, x.repeat_interleave(K, 0)).reshape(B, K)
    log_pz_minus_qz = 0.5 * (lv[:, None, :] + eps ** 2 - z ** 2).sum(2)
    return math.log(K) - torch.logsumexp(log_pz_minus_qz - rec, 1)


class ConvVAE(VAE):
    """vae's --arch conv: stride-2 convolutions (kernel 4, padding 1) down,
    linear layers each side of the latent, transposed convolutions up with the
    output padding that restores odd sizes; ReLU between layers."""
    K, S, P = 4, 2, 1

    def __init__(self, shape=(1, 28, 28), channels=(32, 64), latent=20, likelihood="bernoulli",
                 sigma=0.1, sigma_mode="fixed", model="vae", n_classes=0):
        nn.Module.__init__(self)
        self.set_likelihood(shape[0] * shape[1] * shape[2], likelihood, sigma, sigma_mode)
        K, S, P = self.K, self.S, self.P
        sizes = [tuple(shape)]
        for ch in channels:
            _, h, w = sizes[-1]
            sizes.append((ch, (h + 2 * P - K) // S + 1, (w + 2 * P - K) // S + 1))
        self.encoder = nn.ModuleList(nn.Conv2d(a[0], b[0], K, S, P)
                                     for a, b in zip(sizes, sizes[1:]))
        flat = sizes[-1][0] * sizes[-1][1] * sizes[-1][2]
        self.set_head(flat + n_classes, latent, model)  # cvae: the label joins the head's input
        dec = [nn.Linear(latent + n_classes, flat)]
        for a, b in zip(sizes[:0:-1], sizes[-2::-1]):
            pad = tuple(b[i] - ((a[i] - 1) * S - 2 * P + K) for i in (1, 2))
            dec.append(nn.ConvTranspose2d(a[0], b[0], K, S, P, output_padding=pad))
        self.decoder = nn.ModuleList(dec)
        self.shape, self.inner = tuple(shape), sizes[-1]

    def encode(self, x):
        x = x.reshape(-1, *self.shape)
        for layer in self.encoder:
            x = F.relu(layer(x))
        return self.head(x.flatten(1))

    def decode(self, z):
        h = F.relu(self.decoder[0](z)).reshape(-1, *self.inner)
        for layer in self.decoder[1:-1]:
            h = F.relu(layer(h))
        return self.decoder[-1](h).flatten(1)  # logits


FLOW_EPS = 1e-12  # added to |w|^2 and |v|^2, as vae's src/nn/flow.c does


class GatedDense(nn.Module):
    """vae's --activation gated layer, h(x) * sigmoid(g(x)) (the VampPrior
    paper's GatedDense): C keeps one linear map of twice the width whose first
    half is h and second half g, saved as the two tensors .h and .g."""

    def __init__(self, a, b):
        super().__init__()
        self.h = nn.Linear(a, b)
        self.g = nn.Linear(a, b)

    def forward(self, x):
        return self.h(x) * torch.sigmoid(self.g(x))


class VampPrior(nn.Module):
    """vae's --prior vamp:K: K pseudo-inputs (image-shaped, as the checkpoint
    keeps them), started as vae starts them, N(0.05, 0.01^2) per pixel."""

    def __init__(self, K, shape):
        super().__init__()
        self.pseudo_inputs = nn.Parameter(0.05 + 0.01 * torch.randn(K, *shape))


class RichVAE(VAE):
    """The MLP VAE with the richer members of vae: --activation (relu, tanh,
    softplus, gated), --prior vamp:K and --flow planar:N / householder:N, each
    as vae computes it:
      gated:   every hidden layer (not the head nor the output) is GatedDense;
      vamp:K:  log p(z) = logsumexp_k (-1/2 sum_j lv_kj - log K - 1/2 sum_j
               (z_j - mu_kj)^2 e^-lv_kj), the components the encoder's head at
               the pseudo-inputs clamped to [0, 1] (the paper's hardtanh);
      flows:   amortised by fc_flow after the last hidden layer (T steps of
               P values per image): planar z' = z + u^ tanh(w.z + b) with u^ =
               u + (-1 + softplus(w.u) - w.u) w / |w|^2, log|det| = log|1 +
               (1 - tanh^2) w.u^|; householder z' = z - 2 (v.z) v / |v|^2.
    The KL term is the closed form with neither, else the one-sample estimate
    log q(z_T|x) - log p(z_T) = -1/2 sum (lv + eps^2) - sum log|det| - log p(z_T),
    the Gaussian constants cancelled (vae's kl_img)."""

    ACTS = {"relu": F.relu, "tanh": torch.tanh, "softplus": F.softplus}

    def __init__(self, D=784, hidden=(400,), latent=20, likelihood="bernoulli", sigma=0.1,
                 sigma_mode="fixed", activation="relu", vamp_k=0, flow="none", flow_steps=0,
                 shape=None):
        nn.Module.__init__(self)
        self.set_likelihood(D, likelihood, sigma, sigma_mode)
        self.activation, self.latent = activation, latent
        dense = GatedDense if activation == "gated" else nn.Linear
        widths = [D] + list(hidden)
        self.encoder = nn.ModuleList(dense(a, b) for a, b in zip(widths, widths[1:]))
        self.set_head(widths[-1], latent, "vae")
        back = [latent] + list(reversed(hidden)) + [D]
        self.decoder = nn.ModuleList([dense(a, b) for a, b in zip(back[:-2], back[1:-1])] +
                                     [nn.Linear(back[-2], D)])
        self.flow, self.flow_steps = flow, flow_steps
        if flow != "none":
            P = 2 * latent + 1 if flow == "planar" else latent
            self.fc_flow = nn.Linear(widths[-1], flow_steps * P)
        self.vamp_k = vamp_k
        if vamp_k:
            self.prior = VampPrior(vamp_k, shape or (1, D, 1))

    def hidden_pass(self, layers, x):
        act = self.ACTS.get(self.activation)
        for layer in layers:
            x = layer(x) if act is None else act(layer(x))
        return x

    def encode(self, x):
        return self.head(self.hidden_pass(self.encoder, x))

    def decode(self, z):
        return self.decoder[-1](self.hidden_pass(self.decoder[:-1], z))

    def log_prior(self, z):
        """log p(z) less -d/2 log 2 pi: N(0, I) or the VampPrior's mixture."""
        if not self.vamp_k:
            return -0.5 * (z * z).sum(1)
        u = self.prior.pseudo_inputs.flatten(1).clamp(0, 1)
        mu, lv = self.encode(u)
        lv = lv.clamp(LOGVAR_MIN, LOGVAR_MAX)
        diff = z[:, None, :] - mu[None]
        terms = (-0.5 * lv.sum(1) - math.log(self.vamp_k))[None] - \
            0.5 * (diff * diff * torch.exp(-lv)[None]).sum(2)
        return torch.logsumexp(terms, 1)

    def apply_flow(self, z, p):
        d = self.latent
        logdet = torch.zeros(len(z))
        P = p.shape[1] // self.flow_steps
        for t in range(self.flow_steps):
            q = p[:, t * P:(t + 1) * P]
            if self.flow == "planar":
                u, w, b = q[:, :d], q[:, d:2 * d], q[:, 2 * d]
                wu = (w * u).sum(1)
                uh = u + ((-1 + F.softplus(wu) - wu) / ((w * w).sum(1) + FLOW_EPS))[:, None] * w
                h = torch.tanh((w * z).sum(1) + b)
                z = z + uh * h[:, None]
                logdet = logdet + torch.log((1 + (1 - h * h) * (w * uh).sum(1)).abs())
            else:
                z = z - (2 * (q * z).sum(1) / ((q * q).sum(1) + FLOW_EPS))[:, None] * q
        return z, logdet

    def forward(self, x, eps):
        h = self.hidden_pass(self.encoder, x)
        mu, logvar = self.head(h)
        lv = logvar.clamp(LOGVAR_MIN, LOGVAR_MAX)
        z = z0 = mu + torch.exp(0.5 * lv) * eps
        logdet = 0
        if self.flow != "none":
            z, logdet = self.apply_flow(z, self.fc_flow(h))
        logits = self.decode(z)
        rec = self.rec(logits, x)
        kl = 0.5 * (mu.pow(2) + lv.exp() - 1 - lv).sum(1)
        if self.flow != "none" and not self.vamp_k:  # q_0's part in closed form, as vae's
            kl = kl + 0.5 * (z ** 2 - z0 ** 2).sum(1) - logdet
        elif self.vamp_k:
            kl = -0.5 * (lv + eps ** 2).sum(1) - logdet - self.log_prior(z)
        return mu, logvar, z, logits, rec, kl


class HVAE(nn.Module):
    """vae's --model hvae (MLP, ReLU): two stochastic layers as in Tomczak &
    Welling 2018, q(z2|x) q(z1|x,z2), p(z2) p(z1|z2) p(x|z1,z2). Each of the
    four networks is a chain of the --hidden widths: q(z1|x,z2) reads the rows
    [x | z2], p(x|z1,z2) the rows [z1 | z2] (one dense layer over the
    concatenation); p(z1|z2) and the decoder take the widths mirrored. With
    vamp_k > 0, p(z2) is the VampPrior over K pseudo-inputs (prior.pseudo_inputs,
    image-shaped, clamped to [0, 1] before the encoder)."""

    def __init__(self, D=784, hidden=(300, 300), latent=(40, 40), vamp_k=0, shape=None):
        super().__init__()
        d1, d2 = latent
        self.d1, self.d2 = d1, d2
        self.set_likelihood(D)

        def chain(first, widths, out):
            w = [first] + list(widths)
            return nn.ModuleList(nn.Linear(a, b) for a, b in zip(w, w[1:])), nn.Linear(w[-1], out)

        back = list(reversed(hidden))
        self.encoder, _ = chain(D, hidden, 1)
        h = hidden[-1] if hidden else D
        self.fc_mu, self.fc_logvar = nn.Linear(h, d2), nn.Linear(h, d2)
        self.q_z1, _ = chain(D + d2, hidden, 1)
        h = hidden[-1] if hidden else D + d2
        self.q_z1_mu, self.q_z1_logvar = nn.Linear(h, d1), nn.Linear(h, d1)
        self.p_z1, _ = chain(d2, back, 1)
        h = back[-1] if back else d2
        self.p_z1_mu, self.p_z1_logvar = nn.Linear(h, d1), nn.Linear(h, d1)
        w = [d1 + d2] + back + [D]
        self.decoder = nn.ModuleList(nn.Linear(a, b) for a, b in zip(w, w[1:]))
        self.vamp_k = vamp_k
        if vamp_k:
            self.prior = nn.Module()
            self.prior.pseudo_inputs = nn.Parameter(torch.rand(vamp_k, *(shape or (1, D, 1))))

    def set_likelihood(self, D):
        self.likelihood = "bernoulli"

    @staticmethod
    def run(layers, h):
        for layer in layers:
            h = F.relu(layer(h))
        return h

    def q_z2(self, x):
        h = self.run(self.encoder, x)
        return self.fc_mu(h), self.fc_logvar(h).clamp(LOGVAR_MIN, LOGVAR_MAX)

    def q_z1_given(self, x, z2):
        h = self.run(self.q_z1, torch.cat([x, z2], 1))
        return self.q_z1_mu(h), self.q_z1_logvar(h).clamp(LOGVAR_MIN, LOGVAR_MAX)

    def p_z1_given(self, z2):
        h = self.run(self.p_z1, z2)
        return self.p_z1_mu(h), self.p_z1_logvar(h).clamp(LOGVAR_MIN, LOGVAR_MAX)

    def decode(self, z1, z2):
        h = self.run(self.decoder[:-1], torch.cat([z1, z2], 1))
        return self.decoder[-1](h)  # logits

    @staticmethod
    def log_normal(z, mu, lv):
        """log N(z; mu, e^lv) summed over the last dimension."""
        return -(HALF_LOG_2PI + 0.5 * lv + 0.5 * (z - mu) ** 2 * torch.exp(-lv)).sum(-1)

    def log_p_z2(self, z2):
        if not self.vamp_k:
            return self.log_normal(z2, torch.zeros_like(z2), torch.zeros_like(z2))
        u = self.prior.pseudo_inputs.reshape(self.vamp_k, -1).clamp(0, 1)
        mu, lv = self.q_z2(u)
        lp = self.log_normal(z2[:, None, :], mu[None], lv[None])  # (B, K)
        return torch.logsumexp(lp, 1) - math.log(self.vamp_k)

    def forward(self, x, eps2, eps1, with_ratio=True):
        """x -> per image: z2, z1, logits, rec = -log p(x|z1,z2), kl = [log q(z2|x) -
        log p(z2)] (closed form against N(0, I), the one-sample estimate with the
        VampPrior) + KL(q(z1|x,z2) || p(z1|z2)) (closed form given z2), and the
        log-ratio log p(z1,z2) - log q(z1,z2|x) of the sample (evaluation's; None
        without with_ratio, which training leaves out: it encodes the pseudo-inputs
        again)."""
        mu2, lv2 = self.q_z2(x)
        z2 = mu2 + torch.exp(0.5 * lv2) * eps2
        mu1, lv1 = self.q_z1_given(x, z2)
        z1 = mu1 + torch.exp(0.5 * lv1) * eps1
        pm, pl = self.p_z1_given(z2)
        logits = self.decode(z1, z2)
        rec = F.binary_cross_entropy_with_logits(logits, x, reduction="none").sum(1)
        log_q2 = self.log_normal(z2, mu2, lv2)
        if self.vamp_k:
            kl2 = log_q2 - self.log_p_z2(z2)
        else:
            kl2 = 0.5 * (mu2 ** 2 + lv2.exp() - 1 - lv2).sum(1)
        kl1 = 0.5 * (pl - lv1 + (lv1.exp() + (mu1 - pm) ** 2) * torch.exp(-pl) - 1).sum(1)
        if not with_ratio:
            return z2, z1, logits, rec, kl2 + kl1, None
        ratio = (self.log_p_z2(z2) - log_q2 + self.log_normal(z1, pm, pl)
                 - self.log_normal(z1, mu1, lv1))
        return z2, z1, logits, rec, kl2 + kl1, ratio


def hvae_from_meta(meta):
    """The twin of an HVAE checkpoint's configuration (vae.model = hvae, ReLU)."""
    shape = tuple(int(meta[f"vae.{k}"]) for k in ("channels", "height", "width"))
    hidden = [int(h) for h in meta["vae.hidden"].split(",") if h]
    prior = meta.get("vae.prior", "")
    k = int(prior[5:]) if prior.startswith("vamp:") else 0
    latent = (int(meta["vae.latent1"]), int(meta["vae.latent"]))
    return HVAE(shape[0] * shape[1] * shape[2], hidden, latent, k, shape)


def from_meta(meta):
    """The twin of a checkpoint's configuration (its __metadata__)."""
    shape = tuple(int(meta[f"vae.{k}"]) for k in ("channels", "height", "width"))
    hidden = [int(h) for h in meta["vae.hidden"].split(",") if h]
    latent = int(meta["vae.latent"])
    lik = (meta["vae.likelihood"], float(meta.get("vae.sigma", 0.1)),
           meta.get("vae.sigma_mode", "fixed"), meta["vae.model"],
           int(meta.get("vae.n_classes", 0)))
    rich = (meta.get("vae.activation", "relu"), meta.get("vae.prior", "standard"),
            meta.get("vae.flow", "none"))
    if rich != ("relu", "standard", "none") and meta["vae.model"] == "vae" and \
            meta.get("vae.arch", "mlp") == "mlp":  # RichVAE: the MLP VAE's richer members
        flow, steps = rich_args(rich[2])
        return RichVAE(shape[0] * shape[1] * shape[2], hidden, latent, *lik[:3],
                       activation=rich[0], vamp_k=rich_args(rich[1])[1], flow=flow,
                       flow_steps=steps, shape=shape)
    if meta.get("vae.arch", "mlp") == "conv":
        return ConvVAE(shape, hidden, latent, *lik)
    return VAE(shape[0] * shape[1] * shape[2], hidden, latent, *lik)


def lr_factor(decay, done):
    """vae train --lr-decay's factor on the learning rate of the epoch after
    `done` completed ones: none, step:E:F (F every E epochs, as StepLR) or
    exp:G (G every epoch, as ExponentialLR)."""
    kind, _, rest = decay.partition(":")
    if kind == "step":
        every, factor = rest.split(":")
        return float(factor) ** (done // int(every))
    if kind == "exp":
        return float(rest) ** done
    assert decay == "none", decay
    return 1.0


def rich_args(text):
    """vamp:K / planar:N / householder:N -> (name, count); standard, none -> (text, 0)."""
    name, _, n = text.partition(":")
    return name, int(n) if n else 0


def read_idx(path):
    with (gzip.open if path.endswith(".gz") else open)(path, "rb") as f:
        raw = f.read()
    ndim = raw[3]
    dims = struct.unpack(">" + "I" * ndim, raw[4:4 + 4 * ndim])
    return torch.frombuffer(bytearray(raw[4 + 4 * ndim:]), dtype=torch.uint8).reshape(dims)


def load_split(data, prefix):
    for name in (f"{prefix}-images-idx3-ubyte", f"{prefix}-images-idx3-ubyte.gz"):
        p = os.path.join(data, name)
        if os.path.exists(p):
            x = read_idx(p)
            return x.reshape(x.shape[0], -1).float() / 255.0
    sys.exit(f"{data}: no {prefix} images")


def hvae_main(a, model, train, test, latent, warm):
    """Trains the HVAE as vae train --model hvae does: Adam, batches of a
    fresh permutation, dynamic binarisation if asked, beta warm-up per step;
    prints each epoch's mean training loss and writes the weights (--save)
    under vae's names, so that a vae checkpoint's metadata can carry them."""
    d1, d2 = latent
    opt = torch.optim.Adam(model.parameters(), lr=a.lr)
    per_epoch, steps = (train.shape[0] + a.batch - 1) // a.batch, 0
    for epoch in range(1, a.epochs + 1):
        for group in opt.param_groups:
            group["lr"] = a.lr * lr_factor(a.lr_decay, epoch - 1)
        t0, tot = time.perf_counter(), 0.0
        perm = torch.randperm(train.shape[0])
        for i in range(0, train.shape[0], a.batch):
            x = train[perm[i:i + a.batch]]
            if a.binarize == "dynamic":
                x = torch.bernoulli(x)
            beta = min(1.0, steps / per_epoch / warm) if warm else 1.0
            out = model(x, torch.randn(len(x), d2), torch.randn(len(x), d1), with_ratio=False)
            loss = (out[3] + beta * out[4]).mean()
            opt.zero_grad()
            loss.backward()
            opt.step()
            steps += 1
            tot += (out[3] + out[4]).sum().item()
        secs = time.perf_counter() - t0
        with torch.no_grad():  # the test -ELBO, grey images as vae train's epoch line
            g, tl = torch.Generator().manual_seed(12345), 0.0
            for i in range(0, test.shape[0], 1000):
                x = test[i:i + 1000]
                out = model(x, torch.randn(len(x), d2, generator=g),
                            torch.randn(len(x), d1, generator=g), with_ratio=False)
                tl += (out[3] + out[4]).sum().item()
        print(f"epoch {epoch}/{a.epochs}  train: loss {tot / train.shape[0]:.3f} | test: -elbo "
              f"{tl / test.shape[0]:.3f} | {secs:.3f}s, {train.shape[0] / secs:.0f} img/s",
              flush=True)
        if a.save:
            sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
            import stio
            meta = stio.load_file(a.meta_from)[1] if a.meta_from else None
            stio.save_file(model.state_dict(), a.save, meta)


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--data", default="/usr/share/datasets/fashion-mnist")
    ap.add_argument("--epochs", type=int, default=10)
    ap.add_argument("--batch", type=int, default=128)
    ap.add_argument("--latent", default="20", help="dimensions; hvae: L1,L2 (z1, z2) [20]")
    ap.add_argument("--model", default="vae", choices=("vae", "hvae"),
                    help="hvae: two stochastic layers (MLP, ReLU), as vae train's [vae]")
    ap.add_argument("--binarize", default="none", choices=("none", "dynamic"),
                    help="dynamic: each pixel ~ Bernoulli(intensity) afresh every batch [none]")
    ap.add_argument("--beta-schedule", default="constant",
                    help="constant or linear:N (beta rises from 0 to 1 over N epochs, "
                    "step by step as vae train's) [constant]")
    ap.add_argument("--hidden", default=None, help="widths (mlp) or channels (conv) "
                    "[400 / 32,64]")
    ap.add_argument("--arch", choices=("mlp", "conv"), default="mlp")
    ap.add_argument("--lr", type=float, default=1e-3)
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--save", help="write the trained weights here (safetensors)")
    ap.add_argument("--meta-from", help="hvae: --save with this vae model file's metadata, so "
                    "that vae eval reads the twin's weights as a model of the same settings")
    ap.add_argument("--random", type=int, default=0, metavar="N",
                    help="train on N uniform random images of --shape (and N/10 test ones) "
                    "instead of --data: speed checks on image sets this script cannot read "
                    "(the work per image does not depend on the pixels)")
    ap.add_argument("--shape", default="1,28,28", help="C,H,W of --random's images [1,28,28]")
    ap.add_argument("--lr-decay", default="none", help="none, step:E:F or exp:G, per epoch "
                    "as vae train's [none]")
    ap.add_argument("--activation", default="relu", choices=("relu", "tanh", "softplus", "gated"),
                    help="of the hidden layers (mlp) [relu]")
    ap.add_argument("--prior", default="standard", help="standard or vamp:K [standard]")
    ap.add_argument("--flow", default="none", help="none, planar:N or householder:N [none]")
    a = ap.parse_args()
    torch.set_num_threads(a.threads)
    torch.manual_seed(a.seed)
    shape = tuple(int(v) for v in a.shape.split(","))
    if a.random > 0:
        train = torch.rand(a.random, shape[0] * shape[1] * shape[2])
        test = torch.rand(max(1, a.random // 10), train.shape[1])
    else:
        train, test = load_split(a.data, "train"), load_split(a.data, "t10k")
        shape = (1, 28, 28)
    if a.hidden is None:
        a.hidden = "32,64" if a.arch == "conv" else "400"
    hidden = [int(h) for h in a.hidden.split(",") if h]
    latent = [int(v) for v in a.latent.split(",")]
    warm = int(a.beta_schedule[7:]) if a.beta_schedule.startswith("linear:") else 0
    if a.model == "hvae":
        model = HVAE(train.shape[1], hidden, tuple(latent), rich_args(a.prior)[1], shape)
        if model.vamp_k:  # as vae's: N(0.05, 0.01^2) per pixel (the paper's code's start)
            with torch.no_grad():
                model.prior.pseudo_inputs.normal_(0.05, 0.01)
        hvae_main(a, model, train, test, latent, warm)
        return
    a.latent = latent[0]
    if a.arch == "conv":
        model = ConvVAE(shape, hidden, a.latent)
    else:
        model = VAE(train.shape[1], hidden, a.latent)
    if a.arch == "mlp" and (a.activation, a.prior, a.flow) != ("relu", "standard", "none"):
        flow, steps = rich_args(a.flow)
        model = RichVAE(train.shape[1], hidden, a.latent, activation=a.activation,
                        vamp_k=rich_args(a.prior)[1], flow=flow, flow_steps=steps,
                        shape=shape)
    opt = torch.optim.Adam(model.parameters(), lr=a.lr)
    for epoch in range(1, a.epochs + 1):
        for group in opt.param_groups:
            group["lr"] = a.lr * lr_factor(a.lr_decay, epoch - 1)
        t0 = time.perf_counter()
        perm = torch.randperm(train.shape[0])
        tot = 0.0
        for i in range(0, train.shape[0], a.batch):
            x = train[perm[i:i + a.batch]]
            eps = torch.randn(x.shape[0], a.latent)
            _, _, _, _, rec, kl = model(x, eps)
            loss = (rec + kl).mean()
            opt.zero_grad()
            loss.backward()
            opt.step()
            tot += loss.item() * x.shape[0]
        secs = time.perf_counter() - t0
        with torch.no_grad():
            g = torch.Generator().manual_seed(12345)
            trec = tkl = 0.0
            for i in range(0, test.shape[0], 1000):
                x = test[i:i + 1000]
                eps = torch.randn(x.shape[0], a.latent, generator=g)
                _, _, _, _, rec, kl = model(x, eps)
                trec += rec.sum().item()
                tkl += kl.sum().item()
        n = test.shape[0]
        print(f"epoch {epoch}/{a.epochs}  train: loss {tot / train.shape[0]:.3f} | test: -elbo "
              f"{(trec + tkl) / n:.3f} rec {trec / n:.3f} kl {tkl / n:.3f} | {secs:.3f}s, "
              f"{train.shape[0] / secs:.0f} img/s", flush=True)
    if a.save:
        sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
        import stio
        stio.save_file(model.state_dict(), a.save)


if __name__ == "__main__":
    main()
