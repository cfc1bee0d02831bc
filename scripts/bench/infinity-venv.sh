# Sourced by scripts/bench/bench-embed: the Infinity embedding server (`infinity-emb` from PyPI) with its torch and ONNX
# (optimum) engines, in a git-ignored venv, installed once, pinned to versions that work together with the CPU
# torch wheel available here.
infinity_venv=.cache/infinity-venv
if ! "$infinity_venv/bin/python" -c 'import infinity_emb, optimum.onnxruntime, torch' 2>/dev/null; then
    python3 -m venv "$infinity_venv"
    "$infinity_venv/bin/pip" install --quiet "torch==2.13.0+cpu" "infinity-emb[server,torch,optimum]==0.0.78" \
        "optimum==2.1.0" "optimum-onnx==0.1.0" "onnxruntime==1.31.1" "transformers==4.57.6" "numpy==1.26.4" >&2
fi
