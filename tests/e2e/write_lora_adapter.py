#!/usr/bin/env python3
"""Writes a random PEFT LoRA adapter (attention projections, non-zero B) for a model folder,
with the standard library only, so the black-box serving tests have an adapter without a
training run. The layout is PEFT's (../shared/docs/INTEROP.md): adapter_config.json plus
adapter_model.safetensors with keys base_model.model.model.layers.N.self_attn.X.lora_A.weight.

usage: write_lora_adapter.py MODEL_DIR OUT_DIR [--rank R] [--seed S]
"""
import argparse
import json
import os
import random
import struct


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("model_dir")
    parser.add_argument("out_dir")
    parser.add_argument("--rank", type=int, default=8)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()

    with open(os.path.join(args.model_dir, "config.json")) as f:
        cfg = json.load(f)
    hidden = cfg["hidden_size"]
    heads = cfg["num_attention_heads"]
    kv_heads = cfg.get("num_key_value_heads", heads)
    head_dim = cfg.get("head_dim", hidden // heads)
    shapes = {  # target: (out_features, in_features)
        "q_proj": (heads * head_dim, hidden),
        "k_proj": (kv_heads * head_dim, hidden),
        "v_proj": (kv_heads * head_dim, hidden),
        "o_proj": (hidden, heads * head_dim),
    }
    rng = random.Random(args.seed)
    r = args.rank
    tensors = []  # (name, shape, packed f32 little-endian)
    for layer in range(cfg["num_hidden_layers"]):
        for target, (out_f, in_f) in shapes.items():
            stem = f"base_model.model.model.layers.{layer}.self_attn.{target}"
            bound = 1.0 / in_f ** 0.5
            a = [rng.uniform(-bound, bound) for _ in range(r * in_f)]
            b = [rng.gauss(0.0, 0.05) for _ in range(out_f * r)]
            tensors.append((stem + ".lora_A.weight", [r, in_f], struct.pack(f"<{len(a)}f", *a)))
            tensors.append((stem + ".lora_B.weight", [out_f, r], struct.pack(f"<{len(b)}f", *b)))
    tensors.sort(key=lambda t: t[0])

    header = {"__metadata__": {"format": "pt"}}
    offset = 0
    for name, shape, data in tensors:
        header[name] = {"dtype": "F32", "shape": shape, "data_offsets": [offset, offset + len(data)]}
        offset += len(data)
    header_bytes = json.dumps(header, separators=(",", ":")).encode()
    header_bytes += b" " * (-len(header_bytes) % 8)

    os.makedirs(args.out_dir, exist_ok=True)
    with open(os.path.join(args.out_dir, "adapter_model.safetensors"), "wb") as f:
        f.write(struct.pack("<Q", len(header_bytes)))
        f.write(header_bytes)
        for _, _, data in tensors:
            f.write(data)
    config = {
        "base_model_name_or_path": args.model_dir,
        "bias": "none",
        "fan_in_fan_out": False,
        "inference_mode": True,
        "lora_alpha": 2 * r,
        "lora_dropout": 0.0,
        "modules_to_save": None,
        "peft_type": "LORA",
        "r": r,
        "target_modules": sorted(shapes),
        "task_type": "CAUSAL_LM",
        "use_dora": False,
        "use_rslora": False,
    }
    with open(os.path.join(args.out_dir, "adapter_config.json"), "w") as f:
        json.dump(config, f, indent=2, sort_keys=True)


if __name__ == "__main__":
    main()
