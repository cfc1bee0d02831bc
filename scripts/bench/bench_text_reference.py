"""ONNX Runtime and PyTorch sides of scripts/bench/bench-text (imported by bench-text.py, run in its venv).

Both run the same model directory OmniEmbed loads: PyTorch through Hugging Face `transformers`' BertModel plus
mean pooling and L2 normalisation (what sentence-transformers runs), ONNX Runtime on that module exported by
`torch.onnx` (fp32, dynamic batch and sequence axes, graph optimisations on), and on the same graph quantised by
ONNX Runtime's dynamic int8 quantisation (per-channel weights, as its documentation recommends for transformers).
"""
import os

import numpy as np
import torch
from transformers import BertModel


class SentenceEncoder(torch.nn.Module):
    """BertModel → mean pooling over the attention mask → L2 normalisation."""

    def __init__(self, directory):
        super().__init__()
        self.bert = BertModel.from_pretrained(directory, local_files_only=True, add_pooling_layer=False,
                                              attn_implementation="eager")
        self.bert.eval()

    def forward(self, input_ids, attention_mask):
        hidden = self.bert(input_ids=input_ids, attention_mask=attention_mask).last_hidden_state
        mask = attention_mask.unsqueeze(-1).to(hidden.dtype)
        pooled = (hidden * mask).sum(1) / mask.sum(1).clamp(min=1e-9)
        return torch.nn.functional.normalize(pooled, p=2, dim=1)


def export_onnx(directory, path):
    """Exports the model in `directory` to `path` unless it is already there and newer than the weights."""
    weights = os.path.join(directory, "model.safetensors")
    if os.path.exists(path) and os.path.getmtime(path) >= os.path.getmtime(weights):
        return
    model = SentenceEncoder(directory)
    ids = torch.ones(2, 16, dtype=torch.int64)
    with torch.no_grad():
        torch.onnx.export(model, (ids, torch.ones_like(ids)), path + ".tmp", dynamo=False, opset_version=17,
                          input_names=["input_ids", "attention_mask"], output_names=["embedding"],
                          dynamic_axes={"input_ids": {0: "batch", 1: "sequence"},
                                        "attention_mask": {0: "batch", 1: "sequence"},
                                        "embedding": {0: "batch"}})
    os.replace(path + ".tmp", path)


def quantize_onnx(path, quantized):
    """ONNX Runtime's dynamic int8 of `path` (weights per output channel, activations per tensor at run time)."""
    if os.path.exists(quantized) and os.path.getmtime(quantized) >= os.path.getmtime(path):
        return
    from onnxruntime.quantization import QuantType, quantize_dynamic
    quantize_dynamic(path, quantized + ".tmp", weight_type=QuantType.QInt8, per_channel=True)
    os.replace(quantized + ".tmp", quantized)


def sgemm_peak(threads, size=2048, seconds=1.0):
    """GFLOP/s of NumPy's OpenBLAS sgemm on `size`² float32 matrices with `threads` threads (best of `seconds` of
    calls): the fp32 ceiling of this machine. In a process of its own, as OpenBLAS reads its thread count at load."""
    import subprocess
    import sys
    code = (f"import numpy as np, time\n"
            f"a = np.random.default_rng(1).standard_normal(({size}, {size}), dtype=np.float32)\n"
            f"best, started = 1e9, time.perf_counter()\n"
            f"while time.perf_counter() - started < {seconds}:\n"
            f"    t0 = time.perf_counter(); a @ a; best = min(best, time.perf_counter() - t0)\n"
            f"print(2 * {size} ** 3 / best / 1e9)\n")
    out = subprocess.run([sys.executable, "-c", code], env=dict(os.environ, OPENBLAS_NUM_THREADS=str(threads)),
                         check=True, capture_output=True, text=True).stdout
    return float(out)


class TorchRunner:
    name = "pytorch"

    def __init__(self, directory, threads):
        torch.set_num_threads(threads)
        torch.set_num_interop_threads(1)
        self.model = SentenceEncoder(directory)

    def __call__(self, ids):
        with torch.inference_mode():
            t = torch.from_numpy(ids)
            return self.model(t, torch.ones_like(t)).numpy()


class OnnxRunner:

    def __init__(self, path, threads):
        import onnxruntime as ort
        options = ort.SessionOptions()
        options.intra_op_num_threads = threads
        options.inter_op_num_threads = 1
        options.execution_mode = ort.ExecutionMode.ORT_SEQUENTIAL
        options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
        self.session = ort.InferenceSession(path, options, providers=["CPUExecutionProvider"])

    def __call__(self, ids):
        return self.session.run(None, {"input_ids": ids, "attention_mask": np.ones_like(ids)})[0]
