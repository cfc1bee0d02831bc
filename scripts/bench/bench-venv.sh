# Sourced by the benchmark scripts: the reference engines (PyTorch, ONNX Runtime, transformers, the EfficientNet-Lite
# reference code, Pillow, scikit-image for sample photos, faiss for the codebook fit) in a git-ignored venv, installed once, pinned.
venv=.cache/bench-venv
if ! "$venv/bin/python" -c 'import torch, onnxruntime, onnx, transformers, efficientnet_lite_pytorch, PIL, skimage, faiss' 2>/dev/null; then
    python3 -m venv "$venv"
    "$venv/bin/pip" install --quiet "torch==2.13.0+cpu" "onnxruntime==1.31.1" "onnx==1.23.2" "transformers==4.57.6" \
        "efficientnet_lite_pytorch==0.1.0" "pillow==13.0.0" "scikit-image==0.26.0" "safetensors" "numpy==2.4.6" "faiss-cpu==1.15.1" >&2
fi
# The references' own OpenBLAS builds (NumPy's, faiss's) get the kernel OmniEmbed picks for itself: SkylakeX on
# AVX-512 CPUs, also over a machine-wide OPENBLAS_CORETYPE naming an older one (as README.md explains under the code map).
if grep -q avx512f /proc/cpuinfo && grep -q avx512bw /proc/cpuinfo && grep -q avx512vl /proc/cpuinfo \
    && grep -q avx512dq /proc/cpuinfo; then
    export OPENBLAS_CORETYPE=SkylakeX
fi
