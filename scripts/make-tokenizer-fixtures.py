#!/usr/bin/env python3
"""Regenerates Tests/ModelsTests/Fixtures/tokenizer-minilm.jsonl: token ids from Hugging Face `tokenizers`
(the reference) for a deterministic corpus, which the Swift WordPiece tokenizer must reproduce exactly.

Needs `pip install tokenizers` and the model cache (scripts/fetch-models). Usage: scripts/make-tokenizer-fixtures.py
"""
import inspect
import json
import os
import random
import sys

import tokenizers

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
MODEL = os.path.join(ROOT, "models", "all-MiniLM-L6-v2", "tokenizer.json")
OUT = os.path.join(ROOT, "Tests", "ModelsTests", "Fixtures", "tokenizer-minilm.jsonl")
MAX_TOKENS = 256  # sentence-transformers' max_seq_length for all-MiniLM-L6-v2

WORDS = {
    "french": "café crème brûlée naïve façade garçon élève où déjà Noël hôtel",
    "german": "Straße Mädchen Größe Übermut schön Fußgängerübergänge Äpfel",
    "spanish": "niño mañana corazón acción pingüino Ñandú árbol",
    "vietnamese": "Tiếng Việt người phở Hà Nội nước mắm",
    "russian": "Привет мир рекомендательная система Москва ЁЛКА",
    "greek": "Καλημέρα κόσμε ΟΔΥΣΣΕΥΣ ἀρχή σοφία",
    "arabic": "مرحبا بالعالم نظام التوصية",
    "hebrew": "שלום עולם",
    "hindi": "नमस्ते दुनिया अनुशंसा",
    "thai": "สวัสดีชาวโลก",
    "japanese": "こんにちは世界 カタカナ ひらがな 東京タワー",
    "korean": "안녕하세요 세계 추천 시스템",
    "chinese": "你好世界 推荐系统 短视频 多模态嵌入 𠀀𠀁 豈更",
    "emoji": "😀 🎉 👍🏽 👨‍👩‍👧 🇫🇷 ❤️ 🥰 🫠 🧋",
    "symbols": "© ® ™ € £ ¥ ½ ∑ ∞ ≠ ≤ → ← ✓ ★ ♪ § ¶ † ‡ • … ‰ ′ ″",
    "punctuation": "« » „ “ ” ‘ ’ ‹ › ¿ ¡ — – ‐ ‑ ・ 「 」 『 』 【 】 、 。 ！ ？",
    "fullwidth": "ＡＢＣ　ｄｅｆ　１２３ ｶﾀｶﾅ",
    "ligatures": "ﬁ ﬂ ﬀ Ǆ ǅ ǆ İstanbul ß ẞ",
    "combining": "e\u0301 a\u0308 n\u0303 o\u0302\u0323 x\u20dd",
    "invisible": "a\u200bb c\u200dd e\u2060f g\ufeffh \u200e\u200f \u00ad",
    "controls": "tab\there new\nline cr\rhere nul\x00here bell\x07 esc\x1b del\x7f c1\x85\x9f repl\ufffd",
    "spaces": "a\u00a0b c\u2003d e\u3000f g\u2028h i\u2029j k\u205fl",
    "special": "[CLS] [SEP] [MASK] [PAD] [UNK] [mask] [ CLS ] x[MASK]y",
}


def stdlib_sentences():
    import collections, email, http, json as json_module, logging, os as os_module, pathlib, re, statistics
    import textwrap, unittest, urllib.parse, zipfile
    sentences = []
    for module in (collections, email, http, json_module, logging, os_module, pathlib, re, statistics, textwrap,
                   unittest, urllib.parse, zipfile, random, inspect):
        for _, member in inspect.getmembers(module):
            doc = inspect.getdoc(member) or ""
            for paragraph in doc.split("\n\n"):
                text = " ".join(paragraph.split())
                if 3 <= len(text) <= 600:
                    sentences.append(text)
    return sorted(set(sentences))


def corpus():
    rng = random.Random(20261122)
    texts = []
    natural = stdlib_sentences()
    rng.shuffle(natural)
    texts += natural[:900]
    groups = list(WORDS.values())
    words = " ".join(groups).split(" ")
    texts += groups
    for _ in range(500):  # mixed scripts and cases
        texts.append(" ".join(rng.choice(words) for _ in range(rng.randint(1, 12))))
    for _ in range(150):  # words glued to punctuation and digits
        texts.append("".join(rng.choice(words + list(",.;:!?()[]{}'\"-_/#@$%^&*+=<>|~`0123456789"))
                             for _ in range(rng.randint(2, 20))))
    for _ in range(450):  # random code points from every plane in use, surrogates excluded
        chars = []
        for _ in range(rng.randint(1, 16)):
            block = rng.choice([(0x20, 0x7F), (0xA0, 0x24F), (0x250, 0x2FFF), (0x3000, 0x9FFF), (0xA000, 0xD7FF),
                                (0xE000, 0xFFFD), (0x10000, 0x1FFFF), (0x20000, 0x3134F), (0xE0000, 0xE01EF)])
            chars.append(chr(rng.randint(*block)))
        texts.append("".join(chars))
    for length in (99, 100, 101, 150, 300):  # the 100-character word limit
        texts.append("a" * length)
        texts.append("pre " + "x" * length + " post")
    for _ in range(60):  # long texts, past the 256-token limit
        texts.append(" ".join(rng.sample(natural, 8)))
    texts += ["", " ", "\t\n", "a", "A", "1", "[", "##", "##ing", "unaffable", "don't", "e-mail", "U.S.A.", "3.14159",
              "C++ / C# / F#", "user@example.com", "https://example.com/a?b=c#d", "😀😀😀", "中" * 300]
    seen, unique = set(), []
    for text in texts:
        if text not in seen:
            seen.add(text)
            unique.append(text)
    return unique


def main():
    tokenizer = tokenizers.Tokenizer.from_file(MODEL)
    tokenizer.no_padding()
    tokenizer.enable_truncation(MAX_TOKENS)
    texts = corpus()
    os.makedirs(os.path.dirname(OUT), exist_ok=True)
    with open(OUT, "w") as out:
        for text in texts:
            encoding = tokenizer.encode(text)
            out.write(json.dumps({"text": text, "ids": encoding.ids}, ensure_ascii=True) + "\n")
    print(f"{len(texts)} texts, tokenizers {tokenizers.__version__} -> {os.path.relpath(OUT, ROOT)}", file=sys.stderr)


if __name__ == "__main__":
    main()
