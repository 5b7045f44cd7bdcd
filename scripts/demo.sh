#!/usr/bin/env bash
# Set-up (scripts/setup.sh), then the main job. For now: load the pretrained tiny Llama
# fixture (or a freshly made random tiny model when ../shared is absent) and generate text.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/setup.sh
lathe=build/cli/lathe

model=../shared/fixtures/stories260K-hf
if [ ! -d "$model" ]; then
  model=build/demo-model
  "$lathe" init-model --preset tiny --out "$model" --seed 0
fi
echo "== lathe tokenize"
"$lathe" tokenize --model "$model" "Once upon a time"
echo "== lathe generate (greedy)"
"$lathe" generate --model "$model" --prompt "Once upon a time" --max-new-tokens 64
echo "== lathe generate (sampled, 2 samples)"
"$lathe" generate --model "$model" --prompt "Lily had a red ball" --max-new-tokens 48 \
  --temperature 0.8 --top-p 0.9 --seed 7 --n 2
