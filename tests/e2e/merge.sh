#!/usr/bin/env bash
# `lathe merge` black-box: a hand-written PEFT adapter (q_proj, r=2) on the stories260K
# checkpoint merges into a full folder with tokenizer files; a bad adapter fails naming the key.
# $1 = path of the lathe binary. Exit 77 = skipped (fixture or python3 absent).
set -euo pipefail
lathe="$1"
base=../shared/fixtures/stories260K-hf
[[ -d $base ]] || { echo "skip: $base absent"; exit 77; }
command -v python3 >/dev/null || { echo "skip: python3 absent (used to write the adapter)"; exit 77; }
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT

# safetensors by hand: u64 header length, JSON header, f32 data (layer 0 q_proj only).
python3 - "$work/adapter" <<'PY'
import json, os, random, struct, sys
d = sys.argv[1]; os.makedirs(d)
random.seed(0)
tensors = {"base_model.model.model.layers.0.self_attn.q_proj.lora_A.weight": [2, 64],
           "base_model.model.model.layers.0.self_attn.q_proj.lora_B.weight": [64, 2]}
header, data = {"__metadata__": {"format": "pt"}}, b""
for name, shape in tensors.items():
    n = shape[0] * shape[1]
    header[name] = {"dtype": "F32", "shape": shape, "data_offsets": [len(data), len(data) + 4 * n]}
    data += struct.pack("<%df" % n, *[random.uniform(-0.1, 0.1) for _ in range(n)])
h = json.dumps(header).encode()
h += b" " * (-len(h) % 8)
open(os.path.join(d, "adapter_model.safetensors"), "wb").write(struct.pack("<Q", len(h)) + h + data)
json.dump({"peft_type": "LORA", "task_type": "CAUSAL_LM", "r": 2, "lora_alpha": 4, "lora_dropout": 0.0,
           "target_modules": ["q_proj"], "bias": "none", "layers_to_transform": [0]},
          open(os.path.join(d, "adapter_config.json"), "w"))
PY

"$lathe" merge --model "$base" --adapter "$work/adapter" --out "$work/merged" --dtype bf16
for f in config.json model.safetensors tokenizer.model tokenizer_config.json generation_config.json; do
  [[ -f $work/merged/$f ]] || { echo "FAIL: merged/$f missing"; exit 1; }
done
grep -q '"torch_dtype": "bfloat16"' "$work/merged/config.json" || { echo "FAIL: torch_dtype not bfloat16"; exit 1; }

sed -i 's/"LORA"/"IA3"/' "$work/adapter/adapter_config.json"
if out=$("$lathe" merge --model "$base" --adapter "$work/adapter" --out "$work/merged2" 2>&1); then
  echo "FAIL: merge of a non-LoRA adapter succeeded"; exit 1
fi
grep -q "key 'peft_type'" <<<"$out" || { echo "FAIL: error does not name peft_type: $out"; exit 1; }
[[ ! -e $work/merged2 ]] || { echo "FAIL: a failed merge left $work/merged2"; exit 1; }
echo "merge e2e: ok"
