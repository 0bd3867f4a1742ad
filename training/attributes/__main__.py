"""python -m training.attributes --config configs/attributes.yaml [--resume]

Trains the person-attribute model (clothing of the whole person crop), evaluates float and int8
on the validation split, exports the int8 TFLite model with its manifest and model card after the
parity check, and writes the report folder. ``--resume`` continues the run saved in
``output.run_dir`` (finished epochs are not repeated; a finished run goes straight to export).
Retraining on a store's own crops is the same command with configs/attributes_store.yaml.
"""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m training.attributes", description=__doc__.split("\n\n")[1])
    parser.add_argument("--config", type=Path, default=Path("configs/attributes.yaml"))
    parser.add_argument("--resume", action="store_true", help="continue the run saved in output.run_dir")
    parser.add_argument("--epochs", type=int, help="override train.epochs")
    parser.add_argument("--no-ship", action="store_true", help="train and report, but do not replace output.model")
    args = parser.parse_args(argv)
    from edge.errors import FashionEdgeError

    from .config import load_attribute_config

    try:
        config = load_attribute_config(args.config)
        if args.epochs is not None:
            config.train.epochs = args.epochs
        from .data import load_split
        from .train import train

        train_set = load_split([s.model_dump() for s in config.data], "train", config.seed, config.output.cache_dir)
        val_set = load_split([s.model_dump() for s in config.data], "val", config.seed, config.output.cache_dir)
        print(f"train {len(train_set)} crops, validation {len(val_set)} crops")
        model, state = train(config, train_set, val_set, resume=args.resume)
        from .ship import ship

        ship(config, args.config, model, state, train_set, val_set, replace=not args.no_ship)
        return 0
    except FashionEdgeError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
