"""Times the PyTorch DCGAN tutorial's training step on the CPU or a GPU.

The step matches `dcgan_trainer::train::train_step`: D on a real batch
(label 1) and a detached fake batch (label 0), D's Adam step, then G's step
against the updated D. Random images in [-1, 1] stand in for the data set.

Usage: python3 pytorch_step.py [--ngf 64] [--ndf 64] [--batch 32]
       [--warmup 2] [--iterations 5] [--threads 2] [--device cpu|cuda:N|mps] [--json]

`dcgan bench-train` feeds this file to `python -` and reads the JSON line.
Exits with status 3 and a message when torch cannot be imported.
"""

import argparse
import json
import statistics
import sys
import time

TORCH_MISSING = 3


def build(torch, nz, ngf, ndf, nc):
    nn = torch.nn

    def g_block(cin, cout, stride, padding):
        return [nn.ConvTranspose2d(cin, cout, 4, stride, padding, bias=False), nn.BatchNorm2d(cout), nn.ReLU(True)]

    def d_block(cin, cout):
        return [nn.Conv2d(cin, cout, 4, 2, 1, bias=False), nn.BatchNorm2d(cout), nn.LeakyReLU(0.2, inplace=True)]

    generator = nn.Sequential(
        *g_block(nz, ngf * 8, 1, 0),
        *g_block(ngf * 8, ngf * 4, 2, 1),
        *g_block(ngf * 4, ngf * 2, 2, 1),
        *g_block(ngf * 2, ngf, 2, 1),
        nn.ConvTranspose2d(ngf, nc, 4, 2, 1, bias=False),
        nn.Tanh(),
    )
    discriminator = nn.Sequential(
        nn.Conv2d(nc, ndf, 4, 2, 1, bias=False),
        nn.LeakyReLU(0.2, inplace=True),
        *d_block(ndf, ndf * 2),
        *d_block(ndf * 2, ndf * 4),
        *d_block(ndf * 4, ndf * 8),
        nn.Conv2d(ndf * 8, 1, 4, 1, 0, bias=False),
        nn.Sigmoid(),
    )
    return generator, discriminator


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--ngf", type=int, default=64)
    parser.add_argument("--ndf", type=int, default=64)
    parser.add_argument("--nz", type=int, default=100)
    parser.add_argument("--batch", type=int, default=32)
    parser.add_argument("--warmup", type=int, default=2)
    parser.add_argument("--iterations", type=int, default=5)
    parser.add_argument("--threads", type=int, default=0, help="intra-op threads; 0 keeps PyTorch's default")
    parser.add_argument("--device", default="cpu", help="torch device: cpu, cuda, cuda:N or mps")
    parser.add_argument("--json", action="store_true", help="print one JSON line instead of text")
    args = parser.parse_args()

    try:
        import torch
    except ImportError as err:
        print(f"PyTorch benchmark skipped: cannot import torch ({err})", file=sys.stderr)
        return TORCH_MISSING

    if args.threads > 0:
        torch.set_num_threads(args.threads)
    torch.manual_seed(999)
    device = torch.device(args.device)
    generator, discriminator = (net.to(device) for net in build(torch, args.nz, args.ngf, args.ndf, 3))
    criterion = torch.nn.BCELoss()
    opt_d = torch.optim.Adam(discriminator.parameters(), lr=2e-4, betas=(0.5, 0.999))
    opt_g = torch.optim.Adam(generator.parameters(), lr=2e-4, betas=(0.5, 0.999))
    real = torch.rand(args.batch, 3, 64, 64, device=device) * 2 - 1
    real_label = torch.full((args.batch,), 1.0, device=device)
    fake_label = torch.full((args.batch,), 0.0, device=device)

    steps = []
    for iteration in range(args.warmup + args.iterations):
        noise = torch.randn(args.batch, args.nz, 1, 1, device=device)
        started = time.perf_counter()

        discriminator.zero_grad()
        error_real = criterion(discriminator(real).view(-1), real_label)
        error_real.backward()
        fake = generator(noise)
        error_fake = criterion(discriminator(fake.detach()).view(-1), fake_label)
        error_fake.backward()
        opt_d.step()

        generator.zero_grad()
        error_g = criterion(discriminator(fake).view(-1), real_label)
        error_g.backward()
        opt_g.step()
        _ = (error_real + error_fake).item(), error_g.item()
        if device.type == "cuda":
            # Kernels run asynchronously: wait for the optimiser step too.
            torch.cuda.synchronize(device)

        if iteration >= args.warmup:
            steps.append(time.perf_counter() - started)

    median = statistics.median(steps)
    result = {
        "torch": torch.__version__,
        "device": str(device),
        "threads": torch.get_num_threads(),
        "median_seconds": median,
        "images_per_second": args.batch / median,
    }
    if args.json:
        print(json.dumps(result))
    else:
        print(
            f"torch {result['torch']} on {device}, {result['threads']} threads, ngf {args.ngf}, ndf {args.ndf}, "
            f"batch {args.batch}: {median * 1e3:.1f} ms/step, {result['images_per_second']:.1f} images/s"
        )
    return 0


if __name__ == "__main__":
    sys.exit(main())
