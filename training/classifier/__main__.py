"""python -m training.classifier --config configs/classifier.yaml [--folds K]

Trains the garment classifier (two-stage transfer learning), evaluates float and int8 models
on the validation split, exports the int8 TFLite model with its manifest after the parity
check, and writes the report folder. ``--folds K`` runs sender-grouped K-fold
cross-validation instead (float metrics, mean ± std; nothing is shipped).
"""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")  # TensorFlow's start-up chatter hides the progress


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog="python -m training.classifier",
        description=__doc__.split("\n\n")[1] if __doc__ else None,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--config", type=Path, default=Path("configs/classifier.yaml"), help="classifier config (YAML)")
    parser.add_argument("--folds", type=int, default=0, metavar="K", help="K-fold cross-validation (K >= 2) instead of a training run")
    parser.add_argument("--head-epochs", type=int, help="override train.head.epochs")
    parser.add_argument("--finetune-epochs", type=int, help="override train.finetune.epochs")
    parser.add_argument("--report-dir", type=Path, help="override output.report_dir")
    parser.add_argument("--model-out", type=Path, help="override output.model (where the int8 model is shipped)")
    parser.add_argument(
        "--from-keras", type=Path, metavar="MODEL.keras",
        help="no training: evaluate, export and ship a float model saved by an earlier run "
             "(<cache_dir>/last_run/float_model.keras)",
    )
    parser.add_argument(
        "--resume", action="store_true",
        help="continue the run saved in output.run_dir (stage 1 and finished epochs are not repeated)",
    )
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    from edge.errors import FashionEdgeError

    from .config import load_classifier_config

    try:
        config = load_classifier_config(args.config)
        if args.head_epochs is not None:
            config.train.head.epochs = args.head_epochs
        if args.finetune_epochs is not None:
            config.train.finetune.epochs = args.finetune_epochs
        if args.report_dir is not None:
            config.output.report_dir = args.report_dir.resolve()
        if args.model_out is not None:
            config.output.model = args.model_out.resolve()
        from .pipeline import run_cross_validation, run_training

        if args.folds:
            if args.folds < 2:
                print("error: --folds needs K >= 2", file=sys.stderr)
                return 2
            record = run_cross_validation(config, args.folds)
            for key, value in record["aggregate"].items():
                print(f"{key}: {value['mean']:.4f} ± {value['std']:.4f}")
            return 0
        if args.resume and config.output.run_dir is None:
            print(f"error: {args.config}: output.run_dir: --resume needs a run folder", file=sys.stderr)
            return 2
        run_training(config, args.config, from_keras=args.from_keras, resume=args.resume)
        return 0
    except FashionEdgeError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
