"""Write a PyTorch DCGAN generator and its eval-mode outputs for the import tests.

Builds the PyTorch DCGAN tutorial's ``Generator`` (nz=100, nc=3, 64x64) with
ngf=4 instead of 64, so that the committed files stay small, and writes beside
this script:

* ``netG.pth``: ``torch.save(netG.state_dict())``, keys ``main.0.weight``,
  ``main.1.weight``, ``main.1.bias``, ``main.1.running_mean``,
  ``main.1.running_var``, ``main.1.num_batches_tracked``, ... ``main.12.weight``.
* ``netG_checkpoint.pth``: a whole-checkpoint dictionary ``{"epoch": 5,
  "netG": <the same state_dict with DataParallel's "module." prefix>,
  "netD": <a tutorial discriminator's state_dict with ndf=2>}``.
* ``latents.f32``: ``[3, 100]`` latents from ``torch.randn``.
* ``images.f32``: ``netG.eval()(latents)``, ``[3, 3, 64, 64]``.

The ``.f32`` files are raw little-endian float32 values in row-major order.
The weights are random (seed 0) with standard deviation ``WEIGHT_STD``, and
the BatchNorm running statistics come from 20 training-mode batches of random
latents, after which the BatchNorm scales and shifts are randomised too, so no
parameter has its default value. Run it with a Python that has torch::

    python export/tests/golden/make_netg.py
"""

from pathlib import Path

import numpy as np
import torch
from torch import nn

OUT_DIR = Path(__file__).resolve().parent
NZ, NGF, NC, NDF = 100, 4, 3, 2
SEED = 0
WEIGHT_STD = 0.1
COUNT = 3


class Generator(nn.Module):
    """The tutorial's generator, unchanged but for ngf."""

    def __init__(self):
        super().__init__()
        self.main = nn.Sequential(
            nn.ConvTranspose2d(NZ, NGF * 8, 4, 1, 0, bias=False),
            nn.BatchNorm2d(NGF * 8),
            nn.ReLU(True),
            nn.ConvTranspose2d(NGF * 8, NGF * 4, 4, 2, 1, bias=False),
            nn.BatchNorm2d(NGF * 4),
            nn.ReLU(True),
            nn.ConvTranspose2d(NGF * 4, NGF * 2, 4, 2, 1, bias=False),
            nn.BatchNorm2d(NGF * 2),
            nn.ReLU(True),
            nn.ConvTranspose2d(NGF * 2, NGF, 4, 2, 1, bias=False),
            nn.BatchNorm2d(NGF),
            nn.ReLU(True),
            nn.ConvTranspose2d(NGF, NC, 4, 2, 1, bias=False),
            nn.Tanh(),
        )

    def forward(self, z):
        return self.main(z)


class Discriminator(nn.Module):
    """The tutorial's discriminator with ndf=2."""

    def __init__(self):
        super().__init__()
        self.main = nn.Sequential(
            nn.Conv2d(NC, NDF, 4, 2, 1, bias=False),
            nn.LeakyReLU(0.2, inplace=True),
            nn.Conv2d(NDF, NDF * 2, 4, 2, 1, bias=False),
            nn.BatchNorm2d(NDF * 2),
            nn.LeakyReLU(0.2, inplace=True),
            nn.Conv2d(NDF * 2, NDF * 4, 4, 2, 1, bias=False),
            nn.BatchNorm2d(NDF * 4),
            nn.LeakyReLU(0.2, inplace=True),
            nn.Conv2d(NDF * 4, NDF * 8, 4, 2, 1, bias=False),
            nn.BatchNorm2d(NDF * 8),
            nn.LeakyReLU(0.2, inplace=True),
            nn.Conv2d(NDF * 8, 1, 4, 1, 0, bias=False),
            nn.Sigmoid(),
        )


def randomise(net):
    for module in net.modules():
        if isinstance(module, (nn.ConvTranspose2d, nn.Conv2d)):
            nn.init.normal_(module.weight, 0.0, WEIGHT_STD)


def main():
    torch.manual_seed(SEED)
    net_g = Generator()
    randomise(net_g)

    # Running statistics from training-mode passes, then random affine parameters.
    net_g.train()
    with torch.no_grad():
        for _ in range(20):
            net_g(torch.randn(16, NZ, 1, 1))
        for module in net_g.modules():
            if isinstance(module, nn.BatchNorm2d):
                module.weight.uniform_(0.5, 1.5)
                module.bias.uniform_(-0.3, 0.3)

    net_g.eval()
    latents = torch.randn(COUNT, NZ, 1, 1)
    with torch.no_grad():
        images = net_g(latents)
    print(f"image values: mean {images.mean():.4f}, std {images.std():.4f}, range [{images.min():.4f}, {images.max():.4f}]")

    torch.save(net_g.state_dict(), OUT_DIR / "netG.pth")
    wrapped = {f"module.{key}": value for key, value in net_g.state_dict().items()}
    net_d = Discriminator()
    randomise(net_d)
    torch.save({"epoch": 5, "netG": wrapped, "netD": net_d.state_dict()}, OUT_DIR / "netG_checkpoint.pth")

    latents.numpy().astype("<f4").tofile(OUT_DIR / "latents.f32")
    images.numpy().astype("<f4").tofile(OUT_DIR / "images.f32")
    for name in ["netG.pth", "netG_checkpoint.pth", "latents.f32", "images.f32"]:
        print(f"wrote {name}: {(OUT_DIR / name).stat().st_size} bytes")


if __name__ == "__main__":
    main()
