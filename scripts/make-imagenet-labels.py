#!/usr/bin/env python3
"""Regenerates config/labels/imagenet-1k.txt: the 1000 ImageNet class names in class-index order, one per line, as
torchvision lists them (`torchvision.models._meta._IMAGENET_CATEGORIES`). The image tower's classes are ImageNet's,
and the shared space embeds these names with the text tower.

Downloads the pinned torchvision wheel from PyPI and reads the list from its source with `ast.literal_eval`
(nothing is imported or executed). Usage: scripts/make-imagenet-labels.py
"""
import ast
import os
import subprocess
import sys
import tempfile
import zipfile

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
OUT = os.path.join(ROOT, "config", "labels", "imagenet-1k.txt")

with tempfile.TemporaryDirectory() as tmp:
    subprocess.run([sys.executable, "-m", "pip", "download", "--quiet", "--no-deps", "--only-binary", ":all:",
                    "--python-version", "3.11", "--platform", "manylinux_2_28_x86_64", "--dest", tmp,
                    "torchvision==0.28.0"], check=True)
    wheel = next(os.path.join(tmp, f) for f in os.listdir(tmp) if f.endswith(".whl"))
    source = zipfile.ZipFile(wheel).read("torchvision/models/_meta.py").decode()
tree = ast.parse(source)
names = next(ast.literal_eval(node.value) for node in tree.body
             if isinstance(node, ast.Assign) and getattr(node.targets[0], "id", "") == "_IMAGENET_CATEGORIES")
assert len(names) == 1000, len(names)
with open(OUT, "w") as f:
    f.write("\n".join(names) + "\n")
print(f"wrote {OUT}: {len(names)} names")
