"""Weight-space ensemble (WiSE-FT): ``(1 - alpha) * start + alpha * fine-tuned``.

Fine-tuning on degraded images moves the model away from what it did at full resolution;
interpolating the weights of the start and the fine-tuned model (same architecture, one
fine-tuning run apart) keeps most of both (Wortsman et al., "Robust fine-tuning of zero-shot
models", 2022). Parameters and batch-norm running statistics are interpolated.

    python -m training.detector.wise --start runs/detector/init/garment_shipped_recovered.pt \
        --tuned runs/detector/train_camera/weights/best.pt --alpha 0.5 --out runs/detector/train_camera/wise05.pt
"""

from __future__ import annotations

import argparse
from pathlib import Path


def _model(ckpt: dict):
    m = ckpt.get("ema") or ckpt.get("model")
    return m.float()


def interpolate(start: Path, tuned: Path, alpha: float, out: Path) -> Path:
    from export.ultralytics_env import setup_ultralytics

    setup_ultralytics()
    import torch

    a = torch.load(start, weights_only=False, map_location="cpu")
    b = torch.load(tuned, weights_only=False, map_location="cpu")
    ma, mb = _model(a), _model(b)
    sa, sb = ma.state_dict(), mb.state_dict()
    if sa.keys() != sb.keys() or any(sa[k].shape != sb[k].shape for k in sa):
        raise ValueError("the two checkpoints do not have the same architecture")
    mixed = {k: ((1 - alpha) * sa[k].float() + alpha * sb[k].float()).to(sb[k].dtype)
             if sb[k].is_floating_point() else sb[k] for k in sb}
    mb.load_state_dict(mixed)
    out.parent.mkdir(parents=True, exist_ok=True)
    torch.save({"model": mb, "train_args": b.get("train_args", {}), "epoch": -1, "optimizer": None, "date": None,
                "version": f"wise-ft alpha={alpha}: {start} -> {tuned}"}, out)
    return out


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--start", type=Path, required=True)
    parser.add_argument("--tuned", type=Path, required=True)
    parser.add_argument("--alpha", type=float, default=0.5)
    parser.add_argument("--out", type=Path, required=True)
    args = parser.parse_args(argv)
    print(interpolate(args.start, args.tuned, args.alpha, args.out))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
