"""``fashion-edge catalog index DIR`` / ``fashion-edge catalog search IMAGE``: the store's look-alikes.

``index`` embeds every product photo of DIR (one product per image, id = file stem, optional
``--names`` CSV with ``id,name[,...]`` columns) with the garment classifier's embedding output
and writes ``catalog.npz``; ``search`` prints the top-k items (cosine) for one photo. The model is
``--model``, else the ``--config`` file's ``classifier.model``, else the project's
``models/garment-classifier.tflite`` (the demo home). The daemon reads the same index when
``catalog.enabled`` (docs/styles.md).
"""

from __future__ import annotations

import json
from pathlib import Path

import cv2
from tqdm import tqdm

from ..catalog import CatalogIndex, product_images, read_names
from ..classify.classifier import GarmentClassifier
from ..errors import FashionEdgeError, SourceError


def classifier_path(args) -> Path:
    if getattr(args, "model", None):
        return Path(args.model)
    if getattr(args, "config", None):
        from ..config import load_config

        return Path(load_config(args.config).classifier.model)
    from ..resources import find_home

    return find_home() / "models" / "garment-classifier.tflite"


def _read(path: Path):
    image = cv2.imread(str(path))
    if image is None:
        raise SourceError("cannot decode image (unreadable or not an image)", path=path)
    return image


def index(args) -> int:
    classifier = GarmentClassifier(classifier_path(args))
    if classifier.embedding_size is None:
        raise FashionEdgeError("the classifier has no embedding output (python -m export.embedding MODEL)",
                               path=classifier.model_path)
    paths = product_images(args.dir)
    names = read_names(args.names) if args.names else {}
    images = ((p.stem, _read(p)) for p in tqdm(paths, desc="indexing", unit="photo", mininterval=1))
    catalog = CatalogIndex.build(classifier, images, names)
    out = catalog.save(args.out)
    print(f"wrote {out}: {len(catalog)} items, {catalog.embeddings.shape[1]}-d, model {classifier.model_path.name}")
    return 0


def search(args) -> int:
    model = classifier_path(args)
    catalog = CatalogIndex.load(args.index, model_path=model)
    classifier = GarmentClassifier(model)
    matches = catalog.search(classifier.embed(_read(Path(args.image))), top=args.top)
    for rank, match in enumerate(matches, start=1):
        if args.json:
            print(json.dumps({"rank": rank, "id": match.id, "name": match.name, "score": match.score}))
        else:
            print(f"{rank:2d}. {match.id:<40s} {match.score:.3f}  {match.name if match.name != match.id else ''}".rstrip())
    return 0


def main(args) -> int:
    return index(args) if args.catalog_command == "index" else search(args)
