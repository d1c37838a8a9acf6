"""vq_twin.py - the PyTorch twin of vae's VQ-VAE and of its PixelCNN prior over the codes,
for the reference fixture (scripts/make_vq_ref.py) and speed checks (bench/bench_vq.sh).

The parameter and buffer names and shapes are those vae writes: a VQ-VAE's checkpoint
(encoder.i, vq.pre_quant, vq.codebook, vq.ema_count, vq.ema_sum, decoder.i) and a prior's
file (embed.weight, conv.i), so either loads with a strict load_state_dict.

    /usr/bin/python3 scripts/vq_twin.py [--data DIR] [--epochs 2] [--prior-epochs 2]
                                        [--threads 1] [--codebook-update ema] [--restart-dead 1]

trains as `vae train --model vqvae` and then `vae prior train` do (grey-level Bernoulli
reconstruction, Adam 1e-3, batch 128 for the VQ-VAE and 64 for the prior, a fresh shuffle
every epoch, the last partial batch kept) and prints one line per epoch with its seconds,
counted as vae counts them (a VQ-VAE epoch without its test pass, a prior epoch with it):
    vqvae epoch E/N  train loss L | test rec R vq V | codes used U of K | S s
    prior epoch E/N  train nll L | test nll T | S s
and, before the prior's epochs, the seconds spent encoding the training set to codes.
"""
import argparse
import math
import os
import sys
import time

import torch
from torch import nn
import torch.nn.functional as F

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from vae_twin import load_split  # noqa: E402

EMA_EPS = 1e-5  # the EMA update's Laplace smoothing (model/vq.c's VQ_EMA_EPS)


class VQ(nn.Module):
    """The quantiser: a 1x1 convolution to D channels (z_e), the nearest of K codes for each
    cell, and the EMA state vae keeps beside the codebook (trained or not, it rides in the
    checkpoint: counts as if each code had been chosen once, sums equal to the codes)."""

    def __init__(self, width, D, K):
        super().__init__()
        self.pre_quant = nn.Conv2d(width, D, 1)
        self.codebook = nn.Parameter(torch.empty(K, D).uniform_(-1.0 / K, 1.0 / K))
        self.register_buffer("ema_count", torch.ones(K))
        self.register_buffer("ema_sum", self.codebook.detach().clone())

    def nearest(self, ze):
        """Codes (B*H*W) of ze (B, D, H, W), cells in raster order image by image."""
        flat = ze.detach().permute(0, 2, 3, 1).reshape(-1, ze.shape[1])
        cb = self.codebook.detach()
        # |z|^2 is the same for every code: only -2 z.e + |e|^2 decides
        dist = (cb * cb).sum(1)[None, :] - 2 * flat @ cb.t()
        return dist.argmin(1)

    def lookup(self, codes, shape):
        B, D, H, W = shape
        return self.codebook[codes].reshape(B, H, W, D).permute(0, 3, 1, 2)


class VQVAE(nn.Module):
    """vae's --model vqvae: the conv encoder (kernel 4, stride 2, padding 1, ReLU), vq, a 1x1
    convolution back to the last feature map (decoder.0, ReLU), the transposed convolutions
    (ReLU between, the output padding that restores odd sizes), Bernoulli logits."""
    K_, S_, P_ = 4, 2, 1

    def __init__(self, shape=(1, 28, 28), channels=(32, 64), code_dim=16, codebook=128,
                 commitment=0.25, ema=False, decay=0.99):
        super().__init__()
        K, S, P = self.K_, self.S_, self.P_
        sizes = [tuple(shape)]
        for ch in channels:
            _, h, w = sizes[-1]
            sizes.append((ch, (h + 2 * P - K) // S + 1, (w + 2 * P - K) // S + 1))
        self.encoder = nn.ModuleList(nn.Conv2d(a[0], b[0], K, S, P)
                                     for a, b in zip(sizes, sizes[1:]))
        self.vq = VQ(sizes[-1][0], code_dim, codebook)
        dec = [nn.Conv2d(code_dim, sizes[-1][0], 1)]
        for a, b in zip(sizes[:0:-1], sizes[-2::-1]):
            pad = tuple(b[i] - ((a[i] - 1) * S - 2 * P + K) for i in (1, 2))
            dec.append(nn.ConvTranspose2d(a[0], b[0], K, S, P, output_padding=pad))
        self.decoder = nn.ModuleList(dec)
        self.shape, self.commitment, self.ema, self.decay = tuple(shape), commitment, ema, decay

    def encode(self, x):
        h = x.reshape(-1, *self.shape)
        for layer in self.encoder:
            h = F.relu(layer(h))
        return self.vq.pre_quant(h)

    def decode(self, zq):
        h = F.relu(self.decoder[0](zq))
        for layer in self.decoder[1:-1]:
            h = F.relu(layer(h))
        return self.decoder[-1](h).flatten(1)

    def forward(self, x):
        """x (B, pixels) -> z_e, codes (B, cells), z_q, logits, rec and the VQ terms per image.
        The decoder reads z_e + sg[z_q - z_e] (the straight-through estimator); the VQ terms
        are ||sg[z_e] - e||^2 (the codebook loss; not under EMA updates) + beta ||z_e - sg[e]||^2."""
        ze = self.encode(x)
        codes = self.vq.nearest(ze)
        zq = self.vq.lookup(codes, ze.shape)
        commit = ((ze - zq.detach()) ** 2).sum((1, 2, 3))
        vq = self.commitment * commit
        if not self.ema:
            vq = vq + ((ze.detach() - zq) ** 2).sum((1, 2, 3))
        logits = self.decode(ze + (zq - ze).detach())
        rec = F.binary_cross_entropy_with_logits(logits, x, reduction="none").sum(1)
        return ze, codes.reshape(len(x), -1), zq, logits, rec, vq

    @torch.no_grad()
    def ema_update(self, ze, codes):
        """N_k <- g N_k + (1-g) n_k, m_k <- g m_k + (1-g) sum of the z_e that chose k, then
        e_k = m_k / N'_k with the Laplace-smoothed N'_k = (N_k + eps) / (n + K eps) n."""
        vq, D = self.vq, ze.shape[1]
        flat = ze.detach().permute(0, 2, 3, 1).reshape(-1, D)
        codes = codes.reshape(-1)
        K = vq.codebook.shape[0]
        count = torch.bincount(codes, minlength=K).to(flat.dtype)
        sums = torch.zeros(K, D).index_add_(0, codes, flat)
        g = self.decay
        vq.ema_count.mul_(g).add_((1 - g) * count)
        vq.ema_sum.mul_(g).add_((1 - g) * sums)
        n = vq.ema_count.sum()
        nk = (vq.ema_count + EMA_EPS) / (n + K * EMA_EPS) * n
        vq.codebook.copy_(vq.ema_sum / nk[:, None])
        return count

    @torch.no_grad()
    def count_only(self, codes):
        """The loss update keeps the moving-average counts alone, for the restarts."""
        K = self.vq.codebook.shape[0]
        count = torch.bincount(codes.reshape(-1), minlength=K).float()
        self.vq.ema_count.mul_(self.decay).add_((1 - self.decay) * count)
        return count

    @torch.no_grad()
    def restart_dead(self, ze, threshold, opt):
        """Jukebox's rule as vae applies it: every code whose moving-average use is below the
        threshold moves to a random encoder output of the batch, its EMA sum agreeing and its
        Adam moments started again."""
        vq = self.vq
        dead = (vq.ema_count < threshold).nonzero().flatten()
        if len(dead) == 0:
            return
        B, D, H, W = ze.shape
        r = torch.randint(B, (len(dead),))
        p = torch.randint(H * W, (len(dead),))
        new = ze.detach().reshape(B, D, H * W)[r, :, p]
        vq.codebook[dead] = new
        vq.ema_sum[dead] = new * vq.ema_count[dead, None]
        state = opt.state.get(vq.codebook)
        if state:
            state["exp_avg"][dead] = 0
            state["exp_avg_sq"][dead] = 0


def causal_mask(k, type_b):
    """1 where tap (i, j) of a k x k kernel may be nonzero: the rows above the centre, and on
    the centre's row the taps left of it (mask A) or up to it (mask B)."""
    m = torch.ones(k, k)
    c = k // 2
    m[c, c + (1 if type_b else 0):] = 0
    m[c + 1:, :] = 0
    return m


class PixelCNN(nn.Module):
    """vae's prior (model/codeprior.c): a learned embedding of each code (N(0, 1) start), a 5x5
    mask-A convolution, `layers` 3x3 mask-B ones, a 1x1 and a 1x1 to K logits per cell; ReLU
    between. The masks multiply the weights, so a masked tap's gradient is 0 and it stays at
    the 0 it starts at, as vae holds it."""

    def __init__(self, K, embed=32, channels=64, layers=4):
        super().__init__()
        self.embed = nn.Embedding(K, embed)
        convs = [nn.Conv2d(embed, channels, 5, padding=2)]
        convs += [nn.Conv2d(channels, channels, 3, padding=1) for _ in range(layers)]
        convs += [nn.Conv2d(channels, channels, 1), nn.Conv2d(channels, K, 1)]
        self.conv = nn.ModuleList(convs)
        for i, c in enumerate(self.conv):
            k = c.kernel_size[0]
            mask = causal_mask(k, i > 0) if k > 1 else torch.ones(k, k)
            # not persistent: the state_dict holds vae's tensors only
            self.register_buffer(f"mask{i}", mask[None, None].expand_as(c.weight).clone(),
                                 persistent=False)
            with torch.no_grad():
                c.weight.mul_(getattr(self, f"mask{i}"))

    def forward(self, codes):
        """codes (B, H, W) -> logits (B, K, H, W)."""
        h = self.embed(codes).permute(0, 3, 1, 2)
        last = len(self.conv) - 1
        for i, c in enumerate(self.conv):
            h = F.conv2d(h, c.weight * getattr(self, f"mask{i}"), c.bias, padding=c.padding)
            if i < last:
                h = F.relu(h)
        return h

    def nll(self, codes):
        """-log p(codes) in nats per grid."""
        return F.cross_entropy(self(codes), codes, reduction="none").sum((1, 2))


def gate(x):
    """tanh of the first half of the channels times the sigmoid of the second."""
    a, b = x.chunk(2, dim=1)
    return torch.tanh(a) * torch.sigmoid(b)


class GatedLayer(nn.Module):
    """One layer of the gated PixelCNN (van den Oord et al. 2016) as vae builds it: the vertical
    stack v (k x k, the rows above the centre for mask A, up to it for mask B), the horizontal
    stack h (the centre row's taps left of the centre, or up to it), v2h (1x1, the vertical
    features into the horizontal stack) and res (1x1 after the horizontal gate, plus the
    layer's horizontal input for mask B)."""

    def __init__(self, cin, channels, k, type_b):
        super().__init__()
        C = channels
        self.v = nn.Conv2d(cin, 2 * C, k, padding=k // 2)
        self.h = nn.Conv2d(cin, 2 * C, k, padding=k // 2)
        self.v2h = nn.Conv2d(2 * C, 2 * C, 1)
        self.res = nn.Conv2d(C, C, 1)
        c = k // 2
        vm, hm = torch.zeros(k, k), torch.zeros(k, k)
        vm[:c + (1 if type_b else 0), :] = 1
        hm[c, :c + (1 if type_b else 0)] = 1
        self.register_buffer("vmask", vm[None, None].expand_as(self.v.weight).clone(), persistent=False)
        self.register_buffer("hmask", hm[None, None].expand_as(self.h.weight).clone(), persistent=False)
        self.type_b = type_b
        with torch.no_grad():
            self.v.weight.mul_(self.vmask)
            self.h.weight.mul_(self.hmask)

    def forward(self, xv, xh):
        vpre = F.conv2d(xv, self.v.weight * self.vmask, self.v.bias, padding=self.v.padding)
        hpre = F.conv2d(xh, self.h.weight * self.hmask, self.h.bias, padding=self.h.padding)
        hpre = hpre + self.v2h(vpre)
        out = self.res(gate(hpre))
        return gate(vpre), out + xh if self.type_b else out


class GatedPixelCNN(nn.Module):
    """vae's gated prior (--gated): the embedding, `layers` gated layers (the first 5x5 mask A,
    the rest 3x3 mask B), then ReLU, 1x1, ReLU, 1x1 to K logits on the horizontal stack."""

    def __init__(self, K, embed=32, channels=64, layers=4):
        super().__init__()
        self.embed = nn.Embedding(K, embed)
        self.gated = nn.ModuleList(GatedLayer(embed if i == 0 else channels, channels,
                                              5 if i == 0 else 3, i > 0) for i in range(layers))
        self.out = nn.ModuleList([nn.Conv2d(channels, channels, 1), nn.Conv2d(channels, K, 1)])

    def forward(self, codes):
        x = self.embed(codes).permute(0, 3, 1, 2)
        v, h = x, x
        for layer in self.gated:
            v, h = layer(v, h)
        return self.out[1](F.relu(self.out[0](F.relu(h))))

    def nll(self, codes):
        return F.cross_entropy(self(codes), codes, reduction="none").sum((1, 2))


@torch.no_grad()
def all_codes(model, images):
    """The code grids (N, H, W) of images (N, pixels), 1000 at a time."""
    out = []
    for i in range(0, images.shape[0], 1000):
        ze = model.encode(images[i:i + 1000])
        out.append(model.vq.nearest(ze).reshape(ze.shape[0], ze.shape[2], ze.shape[3]))
    return torch.cat(out)


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--data", default="/usr/share/datasets/fashion-mnist")
    ap.add_argument("--epochs", type=int, default=2)
    ap.add_argument("--prior-epochs", type=int, default=2)
    ap.add_argument("--batch", type=int, default=128)
    ap.add_argument("--prior-batch", type=int, default=64)
    ap.add_argument("--hidden", default="32,64")
    ap.add_argument("--codebook", type=int, default=128)
    ap.add_argument("--code-dim", type=int, default=16)
    ap.add_argument("--commitment", type=float, default=0.25)
    ap.add_argument("--codebook-update", default="ema", help="loss or ema[:decay] [ema]")
    ap.add_argument("--restart-dead", type=float, default=1.0)
    ap.add_argument("--embed", type=int, default=32)
    ap.add_argument("--channels", type=int, default=64)
    ap.add_argument("--layers", type=int, default=4)
    ap.add_argument("--gated", action="store_true", help="the gated PixelCNN (vae prior train --gated)")
    ap.add_argument("--lr", type=float, default=1e-3)
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--threads", type=int, default=1)
    a = ap.parse_args()
    torch.set_num_threads(a.threads)
    torch.manual_seed(a.seed)
    upd, _, dec = a.codebook_update.partition(":")
    if upd not in ("loss", "ema"):
        sys.exit(f"--codebook-update {a.codebook_update}: loss or ema[:decay]")
    train, test = load_split(a.data, "train"), load_split(a.data, "t10k")
    model = VQVAE((1, 28, 28), [int(h) for h in a.hidden.split(",")], a.code_dim, a.codebook,
                  a.commitment, upd == "ema", float(dec) if dec else 0.99)
    # the EMA state is not trained; under EMA updates neither is the codebook
    params = [p for n, p in model.named_parameters() if not (model.ema and n == "vq.codebook")]
    opt = torch.optim.Adam(params, lr=a.lr)
    if model.ema:  # Adam's moments for the codebook stay 0 under EMA: restarts need no reset
        opt.state[model.vq.codebook] = {}
    n, K = train.shape[0], a.codebook
    for epoch in range(1, a.epochs + 1):
        t0 = time.perf_counter()
        perm = torch.randperm(n)
        tot, used = 0.0, torch.zeros(K)
        for i in range(0, n, a.batch):
            x = train[perm[i:i + a.batch]]
            ze, codes, _, _, rec, vq = model(x)
            loss = (rec + vq).mean()
            opt.zero_grad()
            loss.backward()
            opt.step()
            used += model.ema_update(ze, codes) if model.ema else model.count_only(codes)
            if a.restart_dead > 0:
                model.restart_dead(ze, a.restart_dead, opt)
            tot += loss.item() * len(x)
        secs = time.perf_counter() - t0
        with torch.no_grad():
            trec = tvq = 0.0
            for i in range(0, test.shape[0], 1000):
                _, _, _, _, rec, vq = model(test[i:i + 1000])
                trec += rec.sum().item()
                tvq += vq.sum().item()
        nt = test.shape[0]
        print(f"vqvae epoch {epoch}/{a.epochs}  train loss {tot / n:.3f} | test rec {trec / nt:.3f} "
              f"vq {tvq / nt:.3f} | codes used {int((used > 0).sum())} of {K} | {secs:.3f} s",
              flush=True)

    t0 = time.perf_counter()
    codes, tcodes = all_codes(model, train), all_codes(model, test)
    print(f"prior codes: {len(codes)} training grids encoded in {time.perf_counter() - t0:.3f} s",
          flush=True)
    prior = (GatedPixelCNN if a.gated else PixelCNN)(K, a.embed, a.channels, a.layers)
    popt = torch.optim.Adam(prior.parameters(), lr=a.lr)
    cells = codes.shape[1] * codes.shape[2]
    for epoch in range(1, a.prior_epochs + 1):
        t0 = time.perf_counter()
        perm = torch.randperm(len(codes))
        tot = 0.0
        for i in range(0, len(codes), a.prior_batch):
            c = codes[perm[i:i + a.prior_batch]]
            nll = prior.nll(c)
            loss = nll.mean()
            popt.zero_grad()
            loss.backward()
            popt.step()
            tot += nll.sum().item()
        with torch.no_grad():
            tn = sum(prior.nll(tcodes[i:i + 1000]).sum().item() for i in range(0, len(tcodes), 1000))
        tn /= len(tcodes)
        secs = time.perf_counter() - t0  # with the test pass, as vae prior train counts it
        print(f"prior epoch {epoch}/{a.prior_epochs}  train nll {tot / len(codes):.3f} | test nll "
              f"{tn:.3f} nats ({tn / cells / math.log(2):.4f} bits/cell) | {secs:.3f} s", flush=True)


if __name__ == "__main__":
    main()
