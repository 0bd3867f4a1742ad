"""Give an int8 classifier a second output: its penultimate tensor, the outfit embedding.

The garment classifier already computes a 1280-d global-average-pool vector (MobileNetV2) just
before its softmax head. Exposing that tensor as a second subgraph output costs no extra image
pass and no retraining: the flatbuffer gets one more entry in ``subgraph.outputs`` and the
weights, ops and quantisation stay untouched, so the probabilities are bit-identical (checked
here on real photos before the file is replaced).

    python -m export.embedding models/garment-classifier.tflite [--check-images DIR] [--images 20]

rewrites the model in place and updates its manifest (sha256, size_bytes, an ``embedding`` entry
``{"output": 1, "size": 1280, "tensor": name, "scale": s, "zero_point": z}``). Running it on a
model that already has the output changes nothing. ``export/classifier.py`` calls
:func:`add_embedding_output` on every model it exports, so a newly trained classifier carries it.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import numpy as np

from edge.errors import FashionEdgeError, ModelError
from edge.paths import shared_dir
from edge.runtime import TFLiteModel, manifest_path, read_manifest, sha256_file

# Ops between the head's FULLY_CONNECTED and the model output (softmax, output requantise, reshape).
_PASS_THROUGH = {"SOFTMAX", "QUANTIZE", "DEQUANTIZE", "RESHAPE", "LOGISTIC"}


def _op_names(model) -> list[str]:
    from tensorflow.lite.python import schema_py_generated as schema

    names = {v: k for k, v in vars(schema.BuiltinOperator).items() if not k.startswith("_")}
    result = []
    for code in model.operatorCodes:
        builtin = max(int(code.builtinCode), int(code.deprecatedBuiltinCode))
        result.append(names.get(builtin, str(builtin)))
    return result


def find_embedding_tensor(model) -> int:
    """Index of the head's input tensor: walk back from output 0 through softmax/quantize to the
    FULLY_CONNECTED op and take its data input."""
    subgraph = model.subgraphs[0]
    op_names = _op_names(model)
    producer = {int(out): op for op in subgraph.operators for out in op.outputs}
    tensor = int(subgraph.outputs[0])
    for _ in range(8):
        op = producer.get(tensor)
        if op is None:
            break
        name = op_names[op.opcodeIndex]
        if name == "FULLY_CONNECTED":
            return int(op.inputs[0])
        if name not in _PASS_THROUGH:
            break
        tensor = int(op.inputs[0])
    raise ModelError("no FULLY_CONNECTED head found before the probabilities output: cannot expose an embedding")


def add_embedding_output(model_path: str | Path, out_path: str | Path | None = None) -> dict:
    """Write the model with the embedding as output 1; returns the manifest ``embedding`` entry."""
    from tensorflow.lite.tools import flatbuffer_utils

    model_path = Path(model_path)
    out_path = Path(out_path or model_path)
    model = flatbuffer_utils.read_model(str(model_path))
    subgraph = model.subgraphs[0]
    index = find_embedding_tensor(model)
    outputs = [int(o) for o in subgraph.outputs]
    if index not in outputs:
        subgraph.outputs = np.array(outputs + [index], dtype=np.int32)
        for signature in model.signatureDefs or []:
            from tensorflow.lite.python import schema_py_generated as schema

            entry = schema.TensorMapT()
            entry.name, entry.tensorIndex = b"embedding", index
            signature.outputs.append(entry)
        tmp = out_path.with_suffix(".tflite.tmp")
        flatbuffer_utils.write_model(model, str(tmp))
        tmp.replace(out_path)
    elif out_path != model_path:
        out_path.write_bytes(model_path.read_bytes())
    tensor = subgraph.tensors[index]
    quant = tensor.quantization
    scale = float(quant.scale[0]) if quant is not None and quant.scale is not None and len(quant.scale) else 0.0
    zero_point = int(quant.zeroPoint[0]) if quant is not None and quant.zeroPoint is not None and len(quant.zeroPoint) else 0
    return {
        "output": [int(o) for o in subgraph.outputs].index(index) if index in outputs else len(outputs),
        "size": int(np.prod(tensor.shape)),
        "tensor": tensor.name.decode() if isinstance(tensor.name, bytes) else str(tensor.name),
        "scale": scale,
        "zero_point": zero_point,
        "pooling": "global average pool of the last conv (the classifier head's input)",
    }


def update_manifest(model_path: Path, embedding: dict) -> Path:
    manifest = read_manifest(model_path)
    if manifest is None:
        raise ModelError("no manifest beside the model", path=manifest_path(model_path))
    manifest["embedding"] = embedding
    manifest["sha256"] = sha256_file(model_path)
    manifest["size_bytes"] = model_path.stat().st_size
    path = manifest_path(model_path)
    path.write_text(json.dumps(manifest, indent=2) + "\n")
    return path


def _probabilities(model: TFLiteModel, tensors: list[np.ndarray]) -> np.ndarray:
    return np.stack([model.run(t)[0].copy() for t in tensors])


def check_images(directory: Path, count: int) -> list[Path]:
    paths = sorted(p for p in directory.glob("*.jpg"))[:count]
    if not paths:
        raise FashionEdgeError(f"{directory}: no .jpg images to check the rewrite with (--check-images)")
    return paths


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m export.embedding", description=__doc__.splitlines()[0])
    parser.add_argument("model", type=Path, help="int8 classifier .tflite (rewritten in place)")
    parser.add_argument("--check-images", type=Path,
                        default=shared_dir() / "datasets" / "clothing" / "images",
                        help="real photos whose probabilities must stay bit-identical")
    parser.add_argument("--images", type=int, default=20)
    args = parser.parse_args(argv)
    try:
        import cv2

        from edge.preprocess import classifier_input

        before = TFLiteModel(args.model)
        size = before.input.shape[1]
        tensors = []
        for path in check_images(args.check_images, args.images):
            image = cv2.imread(str(path))
            if image is None:
                raise FashionEdgeError(f"{path}: cannot decode image")
            tensors.append(classifier_input(image, size)[None].astype(before.input.dtype))
        reference = _probabilities(before, tensors)
        tmp = args.model.with_suffix(".embedding.tflite")
        embedding = add_embedding_output(args.model, tmp)
        after = TFLiteModel(tmp)
        if len(after.outputs) < 2 or after.outputs[embedding["output"]].shape[-1] != embedding["size"]:
            tmp.unlink(missing_ok=True)
            raise ModelError("rewritten model lacks the embedding output", path=args.model)
        rewritten = _probabilities(after, tensors)
        if not np.array_equal(reference, rewritten):
            tmp.unlink(missing_ok=True)
            raise ModelError(f"probabilities changed after the rewrite (max |diff| "
                             f"{int(np.abs(reference.astype(int) - rewritten.astype(int)).max())} steps): not replaced",
                             path=args.model)
        tmp.replace(args.model)
        manifest = update_manifest(args.model, embedding)
    except FashionEdgeError as exc:
        print(f"export.embedding: {exc}", file=sys.stderr)
        return 2
    print(f"{args.model}: embedding output {embedding['output']} ({embedding['size']}-d, {embedding['tensor']}); "
          f"probabilities bit-identical on {len(tensors)} photos; manifest {manifest} updated "
          f"(sha256 {sha256_file(args.model)[:12]}...)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
