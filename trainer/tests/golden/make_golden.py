"""Generate the PyTorch reference values that the Rust tests compare against.

Writes two JSON files beside this script:

* ``small_generator.json``: weights, latent input and output image of a small
  DCGAN generator (nz=5, ngf=3, nc=3, 16x16) run in eval mode.
* ``batchnorm_train.json``: one training-mode ``BatchNorm2d`` forward and
  backward step, with the running statistics before and after it.

Only this script needs PyTorch; the tests read the JSON files. Run it with a
Python that has torch and numpy::

    python trainer/tests/golden/make_golden.py

Every value is computed in float32, as PyTorch does by default, and written as
the shortest decimal string that parses back to the same float32.
"""

import json
from pathlib import Path

import numpy as np
import torch
from torch import nn

OUT_DIR = Path(__file__).resolve().parent

SPEC = {"nz": 5, "ngf": 3, "nc": 3, "image_size": 16}
BATCH = 2
EPS = 1e-5
SEED = 0

# Standard deviation of the random convolution weights. The tutorial's 0.02
# would make the activations of such a narrow network too small to compare.
WEIGHT_STD = 0.2


class Generator(nn.Module):
    """The tutorial's generator, generalised to any power-of-two image size.

    The first ConvTranspose2d maps the ``[N, nz, 1, 1]`` latent to 4x4, and
    each following one doubles the size. Hidden layer ``i`` of ``L`` layers has
    ``ngf * 2**(L - 2 - i)`` channels, which gives the tutorial's
    ``ngf*8, ngf*4, ngf*2, ngf`` for 64x64.
    """

    def __init__(self, nz, ngf, nc, image_size):
        super().__init__()
        num_layers = image_size.bit_length() - 2
        layers = []
        in_channels = nz
        for index in range(num_layers):
            last = index == num_layers - 1
            out_channels = nc if last else ngf * 2 ** (num_layers - 2 - index)
            stride, padding = (1, 0) if index == 0 else (2, 1)
            layers.append(nn.ConvTranspose2d(in_channels, out_channels, 4, stride, padding, bias=False))
            if last:
                layers.append(nn.Tanh())
            else:
                layers.append(nn.BatchNorm2d(out_channels, eps=EPS))
                layers.append(nn.ReLU(True))
            in_channels = out_channels
        self.main = nn.Sequential(*layers)

    def forward(self, z):
        return self.main(z)


def to_list(tensor):
    """Flatten a float32 tensor row-major into shortest round-trip floats."""
    values = tensor.detach().to(torch.float32).contiguous().view(-1).numpy()
    return [float(np.format_float_positional(value, unique=True, trim="-")) for value in values]


def randomise_generator(generator):
    """Give every weight and running statistic a random, non-default value."""
    with torch.no_grad():
        for module in generator.main:
            if isinstance(module, nn.ConvTranspose2d):
                module.weight.normal_(0.0, WEIGHT_STD)
            elif isinstance(module, nn.BatchNorm2d):
                module.weight.normal_(1.0, 0.2)
                module.bias.normal_(0.0, 0.2)
                module.running_mean.normal_(0.0, 0.2)
                module.running_var.uniform_(0.5, 1.5)


def describe_layers(generator):
    """List each ConvTranspose2d's weight and its BatchNorm, if any."""
    modules = list(generator.main)
    layers = []
    for index, module in enumerate(modules):
        if not isinstance(module, nn.ConvTranspose2d):
            continue
        following = modules[index + 1]
        batch_norm = None
        if isinstance(following, nn.BatchNorm2d):
            batch_norm = {
                "gamma": to_list(following.weight),
                "beta": to_list(following.bias),
                "running_mean": to_list(following.running_mean),
                "running_var": to_list(following.running_var),
            }
        layers.append({"weight": to_list(module.weight), "batch_norm": batch_norm})
    return layers


def make_small_generator():
    """Run the small generator in eval mode on a random batch."""
    generator = Generator(**SPEC)
    randomise_generator(generator)
    generator.eval()

    z = torch.randn(BATCH, SPEC["nz"], 1, 1)
    with torch.no_grad():
        image = generator(z)

    expected_shape = (BATCH, SPEC["nc"], SPEC["image_size"], SPEC["image_size"])
    assert image.shape == expected_shape, f"image shape {tuple(image.shape)}, expected {expected_shape}"

    return {
        "generator_spec": SPEC,
        "eps": EPS,
        "batch": BATCH,
        "layers": describe_layers(generator),
        "z": to_list(z),
        "image": to_list(image),
    }


def make_batchnorm_train():
    """Run one training-mode BatchNorm2d step, forward and backward.

    PyTorch normalises with the biased batch variance but updates
    ``running_var`` with the unbiased one:
    ``running = (1 - momentum) * running + momentum * batch_statistic``.
    The backward pass is that of ``sum(output * grad_output)``.
    """
    shape = (4, 3, 2, 2)
    momentum = 0.1
    channels = shape[1]

    batch_norm = nn.BatchNorm2d(channels, eps=EPS, momentum=momentum)
    with torch.no_grad():
        batch_norm.weight.normal_(1.0, 0.3)
        batch_norm.bias.normal_(0.0, 0.3)
        batch_norm.running_mean.normal_(0.0, 0.5)
        batch_norm.running_var.uniform_(0.5, 1.5)
    batch_norm.train()

    # Channel offsets and scales keep the batch statistics far from 0 and 1.
    offset = torch.tensor([0.5, -1.0, 2.0]).view(1, channels, 1, 1)
    scale = torch.tensor([1.0, 0.5, 3.0]).view(1, channels, 1, 1)
    x = (torch.randn(shape) * scale + offset).requires_grad_(True)
    grad_output = torch.randn(shape)

    initial = {
        "gamma": to_list(batch_norm.weight),
        "beta": to_list(batch_norm.bias),
        "running_mean": to_list(batch_norm.running_mean),
        "running_var": to_list(batch_norm.running_var),
    }

    output = batch_norm(x)
    output.backward(grad_output)

    return {
        "shape": list(shape),
        "momentum": momentum,
        "eps": EPS,
        "input": to_list(x),
        **initial,
        "output": to_list(output),
        "updated_running_mean": to_list(batch_norm.running_mean),
        "updated_running_var": to_list(batch_norm.running_var),
        "grad_output": to_list(grad_output),
        "grad_input": to_list(x.grad),
        "grad_gamma": to_list(batch_norm.weight.grad),
        "grad_beta": to_list(batch_norm.bias.grad),
    }


def write_json(name, data):
    path = OUT_DIR / name
    path.write_text(json.dumps(data, separators=(",", ":")) + "\n")
    print(f"wrote {path} ({path.stat().st_size} bytes)")


def main():
    torch.manual_seed(SEED)
    torch.set_default_dtype(torch.float32)
    write_json("small_generator.json", make_small_generator())
    write_json("batchnorm_train.json", make_batchnorm_train())
    print(f"torch {torch.__version__}, numpy {np.__version__}")


if __name__ == "__main__":
    main()
