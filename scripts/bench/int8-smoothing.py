#!/usr/bin/env python3
"""Whether the text tower's query/key/value projection can run in int8: a PyTorch simulation of our int8 mode
(weights per output channel, inputs per row, symmetric, 127 levels) on the 320 fixture texts, against fp32.

Compares the projection kept in higher precision (what `model.precision: int8` does today), in plain int8, and in
int8 after SmoothQuant's per-channel smoothing (input divided by s, weight columns multiplied by s,
s = max|x|^alpha / max|w|^(1 - alpha)), the input maxima calibrated on other texts (the tokenizer fixture's).
Prints mean and worst cosine and the top-10 neighbour agreement, the issue's fidelity measures.
Run with the bench venv: `source scripts/bench/bench-venv.sh; $venv/bin/python scripts/bench/int8-smoothing.py`.
"""
import json

import numpy as np
import torch
from transformers import AutoModel, AutoTokenizer

FIXTURES = "Tests/ModelsTests/Fixtures/"


def main():
    torch.set_num_threads(1)
    model = AutoModel.from_pretrained("models/all-MiniLM-L6-v2").eval()
    tokenizer = AutoTokenizer.from_pretrained("models/all-MiniLM-L6-v2")
    texts = [json.loads(line)["text"] for line in open(FIXTURES + "embeddings-minilm.jsonl")]
    calibration = [t for t in (json.loads(line).get("text", "") for line in open(FIXTURES + "tokenizer-minilm.jsonl")) if t][:128]

    def embed(batch):
        encoded = tokenizer(batch, return_tensors="pt", padding=True, truncation=True, max_length=256)
        with torch.no_grad():
            states = model(**encoded).last_hidden_state
        mask = encoded["attention_mask"].unsqueeze(-1).float()
        return torch.nn.functional.normalize((states * mask).sum(1) / mask.sum(1), dim=-1).numpy()

    def embed_all(items):
        return np.concatenate([embed(items[i:i + 32]) for i in range(0, len(items), 32)])

    reference = embed_all(texts)
    linears = {}
    for index, layer in enumerate(model.encoder.layer):
        for name, module in (("q", layer.attention.self.query), ("k", layer.attention.self.key),
                             ("v", layer.attention.self.value), ("o", layer.attention.output.dense),
                             ("i", layer.intermediate.dense), ("f", layer.output.dense)):
            linears[(index, name)] = module
    plain_forward = {key: module.forward for key, module in linears.items()}

    maxima = {}
    def record(index):
        def hook(module, inputs, output):
            x = inputs[0].reshape(-1, inputs[0].shape[-1]).abs().amax(0)
            maxima[index] = torch.maximum(maxima.get(index, torch.zeros_like(x)), x)
        return hook
    hooks = [layer.attention.self.query.register_forward_hook(record(i)) for i, layer in enumerate(model.encoder.layer)]
    embed_all(calibration)
    for hook in hooks:
        hook.remove()

    def quantised(module, smooth=None):
        weight = module.weight.detach() * (smooth if smooth is not None else 1)
        scale = weight.abs().amax(1, keepdim=True) / 127
        weight = torch.round(weight / scale).clamp(-127, 127) * scale
        def forward(x):
            if smooth is not None:
                x = x / smooth
            s = x.abs().amax(-1, keepdim=True).clamp_min(1e-12) / 127
            return (torch.round(x / s).clamp(-127, 127) * s) @ weight.T + module.bias
        return forward

    def run(projection, alpha=None):
        for (index, name), module in linears.items():
            if name in "qkv" and projection == "kept":
                module.forward = plain_forward[(index, name)]
            elif name in "qkv" and alpha is not None:
                weights = torch.cat([linears[(index, n)].weight.detach() for n in "qkv"])
                smooth = maxima[index].clamp_min(1e-5) ** alpha / weights.abs().amax(0).clamp_min(1e-5) ** (1 - alpha)
                module.forward = quantised(module, smooth)
            else:
                module.forward = quantised(module)
        got = embed_all(texts)
        cosines = (got * reference).sum(1)
        a, b = reference @ reference.T, got @ got.T
        np.fill_diagonal(a, -9)
        np.fill_diagonal(b, -9)
        top = np.mean([len(set(np.argsort(-a[i])[:10]) & set(np.argsort(-b[i])[:10])) / 10 for i in range(len(texts))])
        return cosines.mean(), cosines.min(), top

    print(f"{len(texts)} texts, calibration on {len(calibration)} others; mean cosine, worst cosine, top-10 agreement")
    print("projection kept (fp32 here; bf16 in the service), the rest int8: %.5f %.5f %.3f" % run("kept"))
    print("projection in int8:                                            %.5f %.5f %.3f" % run("int8"))
    for alpha in (0.5, 0.65, 0.8):
        print(f"projection in int8, smoothed (alpha {alpha:.2f}):                    " + "%.5f %.5f %.3f" % run("int8", alpha))


if __name__ == "__main__":
    main()
