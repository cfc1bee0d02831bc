#!/usr/bin/env python3
"""Regenerates Tests/ModelsTests/Fixtures/tiny-bert: a randomly initialised BERT of another shape than MiniLM
(hidden 72, 6 heads of 12, 3 layers, FFN 144, eps 1e-5) saved by Hugging Face `transformers`, and its mean-pooled,
L2-normalised outputs for a few token sequences (what sentence-transformers computes), so the Swift encoder is
checked on a configuration read from config.json rather than on MiniLM's constants.

Needs torch and transformers (scripts/bench-text installs both into .cache/bench-venv):
    .cache/bench-venv/bin/python scripts/make-tiny-bert-fixtures.py
"""
import json
import os

import torch
from transformers import BertConfig, BertModel

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
OUT = os.path.join(ROOT, "Tests", "ModelsTests", "Fixtures", "tiny-bert")

torch.manual_seed(3)
config = BertConfig(vocab_size=150, hidden_size=72, num_hidden_layers=3, num_attention_heads=6, intermediate_size=144,
                    max_position_embeddings=80, type_vocab_size=2, layer_norm_eps=1e-5, hidden_act="gelu")
model = BertModel(config, add_pooling_layer=False).eval()
# Random init leaves LayerNorm at 1/0 and biases at 0: perturb them so every tensor matters.
with torch.no_grad():
    for name, parameter in model.named_parameters():
        if "LayerNorm" in name or name.endswith("bias"):
            parameter.add_(torch.randn_like(parameter) * 0.1)
os.makedirs(OUT, exist_ok=True)
model.save_pretrained(OUT, safe_serialization=True)

generator = torch.Generator().manual_seed(4)
cases = []
for length in [1, 2, 5, 12, 16, 17, 33, 80]:
    ids = torch.randint(0, config.vocab_size, (1, length), generator=generator)
    with torch.no_grad():
        hidden = model(input_ids=ids, attention_mask=torch.ones_like(ids)).last_hidden_state
    pooled = torch.nn.functional.normalize(hidden.mean(1), p=2, dim=1)[0]
    cases.append({"ids": ids[0].tolist(), "embedding": [round(float(v), 7) for v in pooled]})
with open(os.path.join(OUT, "expected.json"), "w") as f:
    json.dump(cases, f)
print(f"wrote {OUT}: {len(cases)} sequences")
