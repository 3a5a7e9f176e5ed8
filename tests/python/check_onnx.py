"""Check an exported DCGAN generator with the reference ONNX tools.

Usage::

    python check_onnx.py MODEL.onnx [--inputs IN.json --expected OUT.json --tol 1e-4]

The model must pass ``onnx.checker.check_model(full_check=True)``, import the
default ONNX domain at opset 17, take one float32 input ``z`` of shape
``[N, nz, 1, 1]`` with a symbolic batch dimension N, and produce one float32
output ``image`` of shape ``[N, nc, size, size]``.

With ``--inputs``, onnxruntime (CPUExecutionProvider) runs the model on the
latent vectors in that file: ``{"z": [flat values], "shape": [N, nz, 1, 1]}``.
``shape`` may be left out, and is then ``[len(z) / nz, nz, 1, 1]``. With
``--expected`` (a flat list, or an object with a flat ``image`` list) the output
must match within ``--tol`` (maximum absolute error).

Exit status: 0 when every check passes, 1 when one fails, 2 for invalid
arguments.
"""

import argparse
import json
import math
import sys
from pathlib import Path

import numpy as np
import onnx
import onnxruntime

INPUT_NAME = "z"
OUTPUT_NAME = "image"


class CheckError(Exception):
    """A check that the model or its output failed."""


def parse_args(argv):
    parser = argparse.ArgumentParser(description="Check an exported DCGAN generator with onnx and onnxruntime.")
    parser.add_argument("model", type=Path, help="the .onnx file to check")
    parser.add_argument("--opset", type=int, default=17, help="required opset of the default ONNX domain (default: 17)")
    parser.add_argument("--nz", type=int, help="required latent length (default: any)")
    parser.add_argument("--nc", type=int, help="required image channels (default: any)")
    parser.add_argument("--image-size", type=int, help="required image height and width, in pixels (default: any)")
    parser.add_argument("--inputs", type=Path, help='JSON file {"z": [...], "shape": [N, nz, 1, 1]} to run the model on')
    parser.add_argument("--expected", type=Path, help="JSON file with the expected output: a flat list, or an object with an 'image' list")
    parser.add_argument("--tol", type=float, default=1e-4, help="maximum absolute error allowed against --expected (default: 1e-4)")
    parser.add_argument("--write-output", type=Path, help="write the onnxruntime output to this JSON file as a flat list")
    args = parser.parse_args(argv)

    if args.expected is not None and args.inputs is None:
        parser.error("--expected needs --inputs")
    if args.write_output is not None and args.inputs is None:
        parser.error("--write-output needs --inputs")
    if not args.tol >= 0.0:
        parser.error(f"--tol must be a non-negative number, got {args.tol}")
    return args


def load_model(path):
    if not path.is_file():
        raise CheckError(f"model file not found: {path}")
    try:
        return onnx.load(str(path))
    except Exception as err:
        raise CheckError(f"{path} is not a readable ONNX model: {err}") from err


def check_structure(model, path):
    try:
        onnx.checker.check_model(model, full_check=True)
    except onnx.checker.ValidationError as err:
        raise CheckError(f"onnx.checker rejected {path}: {err}") from err
    except onnx.shape_inference.InferenceError as err:
        raise CheckError(f"shape inference failed on {path}: {err}") from err
    print(f"onnx.checker (full_check): ok, IR version {model.ir_version}")


def check_opset(model, required):
    versions = {entry.domain: entry.version for entry in model.opset_import}
    version = versions.get("", versions.get("ai.onnx"))
    if version is None:
        raise CheckError(f"the model imports no default ONNX domain (imports: {versions})")
    if version != required:
        raise CheckError(f"opset {version}, expected {required}")
    print(f"opset: {version}")


def describe_dims(value_info):
    """Return each dimension as an int, a symbolic name, or None when unknown."""
    tensor_type = value_info.type.tensor_type
    if not tensor_type.HasField("shape"):
        return None
    dims = []
    for dim in tensor_type.shape.dim:
        if dim.HasField("dim_value"):
            dims.append(dim.dim_value)
        elif dim.HasField("dim_param"):
            dims.append(dim.dim_param)
        else:
            dims.append(None)
    return dims


def find_single(values, kind, name):
    names = [value.name for value in values]
    if names != [name]:
        raise CheckError(f"the graph's {kind}s are {names}, expected exactly one named '{name}'")
    return values[0]


def check_float32(value_info, kind):
    elem_type = value_info.type.tensor_type.elem_type
    if elem_type != onnx.TensorProto.FLOAT:
        type_name = onnx.TensorProto.DataType.Name(elem_type)
        raise CheckError(f"{kind} '{value_info.name}' has element type {type_name}, expected FLOAT")


def check_fixed(dims, index, expected, what, kind):
    """Check that dimension `index` is a fixed size, equal to `expected` if given."""
    value = dims[index]
    if not isinstance(value, int):
        raise CheckError(f"{kind} dimension {index} ({what}) is {value!r}, expected a fixed size")
    if expected is not None and value != expected:
        raise CheckError(f"{kind} dimension {index} ({what}) is {value}, expected {expected}")
    return value


def check_input(graph, args):
    """Check input `z` and return nz."""
    initializer_names = {init.name for init in graph.initializer}
    inputs = [value for value in graph.input if value.name not in initializer_names]
    value_info = find_single(inputs, "input", INPUT_NAME)
    check_float32(value_info, "input")

    dims = describe_dims(value_info)
    if dims is None or len(dims) != 4:
        raise CheckError(f"input '{INPUT_NAME}' has shape {dims}, expected [N, nz, 1, 1]")
    if not isinstance(dims[0], str) or not dims[0]:
        raise CheckError(f"input '{INPUT_NAME}' batch dimension is {dims[0]!r}, expected a symbolic name such as 'N'")
    nz = check_fixed(dims, 1, args.nz, "nz", "input")
    check_fixed(dims, 2, 1, "height", "input")
    check_fixed(dims, 3, 1, "width", "input")

    print(f"input '{INPUT_NAME}': {dims}")
    return nz


def check_output(graph, args):
    """Check output `image` and return its dimensions (None where unknown)."""
    value_info = find_single(list(graph.output), "output", OUTPUT_NAME)
    check_float32(value_info, "output")

    dims = describe_dims(value_info)
    if dims is None:
        print(f"output '{OUTPUT_NAME}': shape not declared")
        return [None] * 4
    if len(dims) != 4:
        raise CheckError(f"output '{OUTPUT_NAME}' has shape {dims}, expected [N, nc, size, size]")
    if isinstance(dims[0], int):
        raise CheckError(f"output '{OUTPUT_NAME}' batch dimension is fixed at {dims[0]}, expected a symbolic name")
    nc = check_fixed(dims, 1, args.nc, "nc", "output")
    height = check_fixed(dims, 2, args.image_size, "height", "output")
    width = check_fixed(dims, 3, args.image_size, "width", "output")
    if height != width:
        raise CheckError(f"output '{OUTPUT_NAME}' is {height}x{width}, expected a square image")

    print(f"output '{OUTPUT_NAME}': {dims}")
    return dims


def read_json(path, what):
    try:
        return json.loads(path.read_text())
    except FileNotFoundError as err:
        raise CheckError(f"{what} file not found: {path}") from err
    except (OSError, ValueError) as err:
        raise CheckError(f"{what} file {path} is not valid JSON: {err}") from err


def to_float32_array(values, what):
    if not isinstance(values, list) or not values:
        raise CheckError(f"{what} must be a non-empty flat list of numbers")
    try:
        array = np.asarray(values, dtype=np.float32)
    except (TypeError, ValueError) as err:
        raise CheckError(f"{what} must be a flat list of numbers: {err}") from err
    if array.ndim != 1:
        raise CheckError(f"{what} must be a flat list, got {array.ndim} dimensions")
    return array


def load_latents(path, nz):
    data = read_json(path, "inputs")
    if not isinstance(data, dict) or INPUT_NAME not in data:
        raise CheckError(f"inputs file {path} must be an object with a '{INPUT_NAME}' list")
    z = to_float32_array(data[INPUT_NAME], f"'{INPUT_NAME}' in {path}")

    shape = data.get("shape")
    if shape is None:
        if z.size % nz != 0:
            raise CheckError(f"'{INPUT_NAME}' in {path} has {z.size} values, which is not a multiple of nz = {nz}")
        shape = [z.size // nz, nz, 1, 1]
    if not (isinstance(shape, list) and all(isinstance(d, int) and d > 0 for d in shape)):
        raise CheckError(f"'shape' in {path} must be a list of positive integers, got {shape!r}")
    if math.prod(shape) != z.size:
        raise CheckError(f"'shape' {shape} in {path} needs {math.prod(shape)} values but '{INPUT_NAME}' has {z.size}")
    return z.reshape(shape)


def load_expected(path):
    data = read_json(path, "expected output")
    if isinstance(data, dict):
        if OUTPUT_NAME not in data:
            raise CheckError(f"expected-output file {path} must be a flat list or an object with an '{OUTPUT_NAME}' list")
        data = data[OUTPUT_NAME]
    return to_float32_array(data, f"expected output in {path}")


def run_model(path, z):
    try:
        session = onnxruntime.InferenceSession(str(path), providers=["CPUExecutionProvider"])
        (image,) = session.run([OUTPUT_NAME], {INPUT_NAME: z})
    except Exception as err:
        raise CheckError(f"onnxruntime {onnxruntime.__version__} failed to run {path}: {err}") from err
    print(f"onnxruntime {onnxruntime.__version__}: output shape {list(image.shape)}")
    return image


def check_image_shape(image, batch, declared):
    if image.ndim != 4 or image.shape[0] != batch:
        raise CheckError(f"output shape is {list(image.shape)}, expected [{batch}, nc, size, size]")
    for index in (1, 2, 3):
        if declared[index] is not None and image.shape[index] != declared[index]:
            raise CheckError(f"output shape is {list(image.shape)} but the model declares {declared}")
    if not np.all(np.isfinite(image)):
        raise CheckError("the output contains NaN or infinite values")


def compare(image, expected, tol):
    actual = image.reshape(-1)
    if actual.size != expected.size:
        raise CheckError(f"the output has {actual.size} values but the expected output has {expected.size}")

    errors = np.abs(actual.astype(np.float64) - expected.astype(np.float64))
    worst = int(np.argmax(errors))
    max_error = float(errors[worst])
    print(f"max abs error: {max_error:.3e} at flat index {worst} (tolerance {tol:g})")
    if not max_error <= tol:
        raise CheckError(
            f"max abs error {max_error:.3e} exceeds the tolerance {tol:g}: "
            f"output {float(actual[worst]):.9g}, expected {float(expected[worst]):.9g} at flat index {worst}"
        )


def run(args):
    model = load_model(args.model)
    check_structure(model, args.model)
    check_opset(model, args.opset)
    nz = check_input(model.graph, args)
    declared = check_output(model.graph, args)

    if args.inputs is None:
        return
    z = load_latents(args.inputs, nz)
    if list(z.shape[1:]) != [nz, 1, 1]:
        raise CheckError(f"inputs have shape {list(z.shape)}, expected [N, {nz}, 1, 1]")
    image = run_model(args.model, z)
    check_image_shape(image, z.shape[0], declared)

    if args.write_output is not None:
        args.write_output.write_text(json.dumps([float(v) for v in image.reshape(-1)]) + "\n")
        print(f"wrote the output to {args.write_output}")
    if args.expected is not None:
        compare(image, load_expected(args.expected), args.tol)


def main(argv=None):
    args = parse_args(argv)
    try:
        run(args)
    except CheckError as err:
        print(f"check_onnx: FAILED: {err}", file=sys.stderr)
        return 1
    print("check_onnx: all checks passed")
    return 0


if __name__ == "__main__":
    sys.exit(main())
