#!/usr/bin/env python3
"""EM3's Fusion-Q-Former in PyTorch: the reference OmniEmbed's `FusionQFormer` is checked against.

Learnable queries are prepended to the item's modality tokens, each projected linearly to the model width and tagged
with a learned modality embedding (text token states, image features per frame, audio features per 3-second patch),
and each image token (the cover, then a video's frames in time order) with a learned frame position embedding;
L pre-LayerNorm self-attention layers (PyTorch's TransformerEncoderLayer with norm_first, erf GELU, no dropout) mix
them; the query outputs go through a final LayerNorm, are flattened and projected to the output size, then
L2-normalised. Weight names below are the safetensors names OmniEmbed loads.

Usage (in a venv with torch, numpy and safetensors, e.g. .cache/bench-venv):
  python scripts/reference/fusion_qformer.py OUTPUT_DIRECTORY [--seed N]
writes config.json and model.safetensors (random weights from the seed) and expected.json (random inputs of several
shapes and the module's outputs).
"""
import argparse
import json
import os

import torch

MODALITIES = ("text", "image", "audio")


class FusionQFormer(torch.nn.Module):
    def __init__(self, config):
        super().__init__()
        d = config["hidden_size"]
        self.config = config
        self.queries = torch.nn.Parameter(torch.randn(config["queries"], d) * 0.5)
        self.modality_embeddings = torch.nn.Parameter(torch.randn(len(MODALITIES), d) * 0.5)
        self.projections = torch.nn.ModuleDict({m: torch.nn.Linear(config["input_sizes"][m], d) for m in MODALITIES})
        self.layers = torch.nn.ModuleList([
            torch.nn.TransformerEncoderLayer(d, config["num_attention_heads"], config["intermediate_size"], dropout=0.0,
                                             activation="gelu", layer_norm_eps=config["layer_norm_eps"],
                                             batch_first=True, norm_first=True)
            for _ in range(config["num_layers"])])
        self.final_norm = torch.nn.LayerNorm(d, eps=config["layer_norm_eps"])
        self.output = torch.nn.Linear(config["queries"] * d, config["output_size"])
        # Image token i (past the last position: the last) gets frame_positions[i].
        self.frame_positions = torch.nn.Parameter(torch.randn(config["max_frames"], d) * 0.5)

    def forward(self, inputs):
        """One item: `inputs` maps a modality to its tokens (rows × input size); absent modalities are left out."""
        tokens = [self.queries]
        for index, modality in enumerate(MODALITIES):
            if modality in inputs and len(inputs[modality]):
                projected = self.projections[modality](inputs[modality]) + self.modality_embeddings[index]
                if modality == "image":
                    positions = torch.clamp(torch.arange(len(projected)), max=self.config["max_frames"] - 1)
                    projected = projected + self.frame_positions[positions]
                tokens.append(projected)
        x = torch.cat(tokens).unsqueeze(0)
        for layer in self.layers:
            x = layer(x)
        queries = self.final_norm(x[0, :self.config["queries"]])
        return torch.nn.functional.normalize(self.output(queries.reshape(-1)), dim=0)

    def named_weights(self):
        """The module's tensors under the names OmniEmbed reads."""
        weights = {"queries": self.queries, "modality_embeddings": self.modality_embeddings,
                   "frame_positions": self.frame_positions,
                   "final_norm.weight": self.final_norm.weight, "final_norm.bias": self.final_norm.bias,
                   "output.weight": self.output.weight, "output.bias": self.output.bias}
        for m in MODALITIES:
            weights[f"projections.{m}.weight"] = self.projections[m].weight
            weights[f"projections.{m}.bias"] = self.projections[m].bias
        for i, layer in enumerate(self.layers):
            for name, tensor in {
                "attention.in_proj.weight": layer.self_attn.in_proj_weight, "attention.in_proj.bias": layer.self_attn.in_proj_bias,
                "attention.out_proj.weight": layer.self_attn.out_proj.weight, "attention.out_proj.bias": layer.self_attn.out_proj.bias,
                "norm1.weight": layer.norm1.weight, "norm1.bias": layer.norm1.bias,
                "linear1.weight": layer.linear1.weight, "linear1.bias": layer.linear1.bias,
                "linear2.weight": layer.linear2.weight, "linear2.bias": layer.linear2.bias,
                "norm2.weight": layer.norm2.weight, "norm2.bias": layer.norm2.bias,
            }.items():
                weights[f"layers.{i}.{name}"] = tensor
        return {k: v.detach().contiguous() for k, v in weights.items()}


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("output")
    parser.add_argument("--seed", type=int, default=20261122)
    args = parser.parse_args()
    from safetensors.torch import save_file

    torch.manual_seed(args.seed)
    config = {"architecture": "fusion-qformer", "hidden_size": 64, "num_attention_heads": 4, "num_layers": 2,
              "intermediate_size": 128, "queries": 4, "output_size": 48, "layer_norm_eps": 1e-5,
              "input_sizes": {"text": 40, "image": 24, "audio": 16}, "max_frames": 6}
    model = FusionQFormer(config).eval()
    # LayerNorm weights away from 1 and biases away from 0, so that a wrong affine would show.
    with torch.no_grad():
        for module in model.modules():
            if isinstance(module, torch.nn.LayerNorm):
                module.weight.add_(torch.randn_like(module.weight) * 0.2)
                module.bias.add_(torch.randn_like(module.bias) * 0.2)
    os.makedirs(args.output, exist_ok=True)
    with open(os.path.join(args.output, "config.json"), "w") as f:
        json.dump(config, f, indent=2)
    save_file(model.named_weights(), os.path.join(args.output, "model.safetensors"))

    shapes = [{"text": 7}, {"image": 1}, {"audio": 3}, {"text": 12, "image": 4}, {"text": 5, "image": 2, "audio": 6},
              {"text": 1, "audio": 1}, {"text": 30, "image": 8, "audio": 20}]
    cases = []
    with torch.no_grad():
        for shape in shapes:
            inputs = {m: torch.randn(n, config["input_sizes"][m]) for m, n in shape.items()}
            cases.append({"inputs": {m: t.tolist() for m, t in inputs.items()}, "output": model(inputs).tolist()})
    with open(os.path.join(args.output, "expected.json"), "w") as f:
        json.dump({"seed": args.seed, "torch": torch.__version__, "cases": cases}, f)


if __name__ == "__main__":
    main()
