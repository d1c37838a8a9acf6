"""torch_load_check.py - loads a vae checkpoint into the PyTorch twin with a
strict load_state_dict and decodes the given latent codes, printing the
means; tests/test_cli.sh compares them with `vae`'s when torch is present.

    /usr/bin/python3 scripts/torch_load_check.py model.safetensors
"""
import os
import sys

import torch

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import stio  # noqa: E402
from vae_twin import from_meta  # noqa: E402

tensors, meta = stio.load_file(sys.argv[1])
model = from_meta(meta)
model.load_state_dict(tensors)  # strict: every name and shape must match
with torch.no_grad():
    z = torch.linspace(-1, 1, int(meta["vae.latent"])).reshape(1, -1)
    if "vae.n_classes" in meta:  # a CVAE decodes [z | one-hot label]; label 0 here
        z = torch.cat([z, torch.eye(int(meta["vae.n_classes"]))[:1]], 1)
    print(" ".join(f"{v:.5f}" for v in torch.sigmoid(model.decode(z))[0, :8].tolist()))
