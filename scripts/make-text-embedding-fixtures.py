#!/usr/bin/env python3
"""Regenerates Tests/ModelsTests/Fixtures/embeddings-minilm.jsonl: sentence-transformers' embeddings (the reference)
of 320 texts from 1 to 300+ tokens, which the Swift encoder must reproduce (cosine >= 0.99999, |diff| <= 1e-4).

Needs `pip install sentence-transformers` (PyTorch) and the model cache (scripts/fetch-models); runs offline.
Usage: scripts/make-text-embedding-fixtures.py
"""
import json
import os
import random
import sys

os.environ["HF_HUB_OFFLINE"] = "1"
from sentence_transformers import SentenceTransformer  # noqa: E402

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
MODEL = os.path.join(ROOT, "models", "all-MiniLM-L6-v2")
OUT = os.path.join(ROOT, "Tests", "ModelsTests", "Fixtures", "embeddings-minilm.jsonl")

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from importlib import import_module  # noqa: E402

tokenizer_fixtures = import_module("make-tokenizer-fixtures")


def texts(model):
    rng = random.Random(7)
    natural = tokenizer_fixtures.stdlib_sentences()
    rng.shuffle(natural)
    words = " ".join(tokenizer_fixtures.WORDS.values()).split(" ")
    chosen = ["a", "OK", "Hello, world!", "a cat on a sofa", "solo piano", "短视频推荐"]
    chosen += natural[:200]
    chosen += [" ".join(rng.choice(words) for _ in range(rng.randint(1, 30))) for _ in range(60)]
    # Long texts, up to and past the 256-token truncation.
    for _ in range(54):
        text = " ".join(rng.sample(natural, rng.randint(2, 10)))
        chosen.append(text)
    return chosen


def main():
    model = SentenceTransformer(MODEL, device="cpu")
    corpus = texts(model)
    lengths = [len(model.tokenizer(t, truncation=False)["input_ids"]) for t in corpus]
    embeddings = model.encode(corpus, normalize_embeddings=True, batch_size=16, convert_to_numpy=True)
    with open(OUT, "w") as out:
        for text, length, embedding in zip(corpus, lengths, embeddings):
            out.write(json.dumps({"text": text, "tokens": length,
                                  "embedding": [float(f"{v:.9g}") for v in embedding]}, ensure_ascii=True) + "\n")
    print(f"{len(corpus)} texts, {min(lengths)}..{max(lengths)} tokens, max_seq_length {model.max_seq_length}"
          f" -> {os.path.relpath(OUT, ROOT)}", file=sys.stderr)


if __name__ == "__main__":
    main()
