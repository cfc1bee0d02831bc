"""ONNX Runtime and PyTorch sides of scripts/bench/bench-text (imported by bench-text.py, run in its venv).

Both run the same model directory OmniEmbed loads: PyTorch through Hugging Face `transformers`' BertModel plus
mean pooling and L2 normalisation (what sentence-transformers runs), ONNX Runtime on that module exported by
`torch.onnx` (fp32, dynamic batch and sequence axes, graph optimisations on).
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
    name = "onnxruntime"

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
