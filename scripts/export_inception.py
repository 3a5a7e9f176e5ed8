"""Exports pytorch-fid's Inception-v3 (the FID network, weights ported from
TensorFlow's 2015-12-05 Inception) to ONNX for `dcgan eval --inception FILE`.

Run on a machine with internet access, in a virtual environment with
`pip install torch torchvision pytorch-fid onnx` (pytorch-fid downloads its
weights on first use):

    python scripts/export_inception.py inception-fid.onnx

The graph takes `images` float32 [N, 3, 299, 299] with RGB in [-1, 1].
dcgan eval resizes and scales the images itself, as pytorch-fid does with
resize_input and normalize_input. The graph returns `pool3` [N, 2048], the
FID features, and `logits` [N, 1008], the classifier without its bias
("logits_unbiased", as torch-fidelity uses for the Inception Score).

NOTE: the repository's tests do not run this script (they have no torch and
no network access), so whether tract 0.23 runs every operator of the
exported graph is unverified; the tests use a stand-in graph with the same
input and output names and shapes.
"""

import sys

import torch
import torch.nn.functional as F
from pytorch_fid.inception import InceptionV3, fid_inception_v3


class FidInceptionForOnnx(torch.nn.Module):
    def __init__(self):
        super().__init__()
        block = InceptionV3.BLOCK_INDEX_BY_DIM[2048]
        self.blocks = InceptionV3([block], resize_input=False, normalize_input=False, use_fid_inception=True)
        self.fc_weight = torch.nn.Parameter(fid_inception_v3().fc.weight.detach(), requires_grad=False)

    def forward(self, images):
        pool = self.blocks(images)[0].flatten(1)
        return pool, F.linear(pool, self.fc_weight)


def main():
    if len(sys.argv) != 2:
        sys.exit("usage: python scripts/export_inception.py OUT.onnx")
    model = FidInceptionForOnnx().eval()
    example = torch.zeros(1, 3, 299, 299)
    torch.onnx.export(
        model,
        example,
        sys.argv[1],
        input_names=["images"],
        output_names=["pool3", "logits"],
        dynamic_axes={"images": {0: "N"}, "pool3": {0: "N"}, "logits": {0: "N"}},
        opset_version=17,
    )
    print("wrote", sys.argv[1])


if __name__ == "__main__":
    main()
