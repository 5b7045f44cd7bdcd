#!/usr/bin/env bash
# The active-learning experiment of docs/active_learning.md: does choosing the questions to
# label by `disagreement` give a better SFT model than a random choice of the same size?
#
#   scripts/active_learning_experiment.sh PIPELINE_RUN_DIR [OUT_DIR]   (default runs/active-learning)
#
# It reuses a finished `lathe pipeline` run of configs/inventory-tiny.yaml: its inventory data
# (RUN/data: train and test splits) and its pretrained base (RUN/pretrain/model), so the models
# here start where the pipeline's SFT starts. For each seed:
#   1. a seeded random SEED_SIZE of the train split is "labelled"; the rest is the pool, whose
#      gold SQL selection never reads;
#   2. the seed model: full fine-tuning of the base on the seed labels (SEED_STEPS steps);
#   3. the seed model ranks the pool by each strategy;
#   4. for each budget B, the top B of a ranking are labelled and the seed model is fine-tuned
#      further on seed + B labels (ROUND_STEPS steps); budget 0 is the same training on the
#      seed labels alone (the control: more steps, no new labels);
#   5. every model answers the test split (greedy), scored by execution accuracy.
# Results: OUT_DIR/results.jsonl (one line per model) and OUT_DIR/results.md (a table).
# A rerun skips every model whose evaluation exists.
#
# Environment: LATHE (binary; default build/cli/lathe), SEEDS ("1"), BUDGETS ("100 200 400"),
# STRATEGIES ("random disagreement"; entropy also works), SEED_SIZE (200), SEED_STEPS (500),
# ROUND_STEPS (400), LR (1e-3), SAMPLES (K, 6), TEMPERATURE (1.0), THREADS (0 = all cores).
set -euo pipefail
cd "$(dirname "$0")/.."

pipeline_run=${1:?usage: scripts/active_learning_experiment.sh PIPELINE_RUN_DIR [OUT_DIR]}
out=${2:-runs/active-learning}
lathe=${LATHE:-build/cli/lathe}
seeds=${SEEDS:-1}
budgets=${BUDGETS:-100 200 400}
strategies=${STRATEGIES:-random disagreement}
seed_size=${SEED_SIZE:-200}
seed_steps=${SEED_STEPS:-500}
round_steps=${ROUND_STEPS:-400}
lr=${LR:-1e-3}
samples=${SAMPLES:-6}
temperature=${TEMPERATURE:-1.0}
threads=${THREADS:-0}
data=$pipeline_run/data
base=$pipeline_run/pretrain/model
sft_config=$pipeline_run/sft/config.yaml
[[ -x $lathe ]] || { echo "no lathe binary at $lathe (build it, or set LATHE)" >&2; exit 1; }
for f in "$data/train.jsonl" "$data/test.jsonl" "$data/inventory.sqlite" "$base/config.json" "$sft_config"; do
  [[ -f $f ]] || { echo "$f is missing: give a finished pipeline run of configs/inventory-tiny.yaml" >&2; exit 1; }
done
db=$data/inventory.sqlite
mkdir -p "$out"
log() { echo "[$(date +%H:%M:%S)] $*"; }
start=$(date +%s)

# sft RUN_DIR MODEL_DIR TRAIN_JSONL STEPS SEED: full fine-tuning with the pipeline's SFT recipe.
sft() {
  "$lathe" sft --config "$sft_config" run.dir="$1" run.seed="$5" model.path="$2" data.train="$3" \
    eval.every=0 lora.enabled=false training.lr="$lr" training.max_steps="$4" \
    training.threads="$threads" checkpoint.keep=1 > "$1.log" 2>&1
}
# evaluate MODEL_DIR OUT_JSON: execution accuracy on the test split.
evaluate() {
  [[ -f $2 ]] && return 0
  "$lathe" data eval --model "$1" --db "$db" --in "$data/test.jsonl" --batch-size 16 --max-new-tokens 128 \
    --threads "$threads" --json > "$2.tmp" 2> /dev/null
  mv "$2.tmp" "$2"
}
summary() {  # summary EVAL_JSON: "correct/examples"
  python3 -c 'import json, sys; d = json.load(open(sys.argv[1])); print(str(d["correct"]) + "/" + str(d["examples"]))' "$1"
}

for s in $seeds; do
  d=$out/seed-$s
  mkdir -p "$d"
  if [[ ! -f $d/seed_sft.jsonl ]]; then
    "$lathe" data select --pool "$data/train.jsonl" --strategy random --count "$seed_size" --seed "$s" \
      --out "$d/seed.jsonl" > /dev/null
    "$lathe" data format --in "$d/seed.jsonl" --sft "$d/seed_sft.jsonl.tmp" > /dev/null
    mv "$d/seed_sft.jsonl.tmp" "$d/seed_sft.jsonl"
  fi
  if [[ ! -f $d/m0/model/model.safetensors ]]; then
    log "seed $s: seed model, $seed_size labels, $seed_steps steps"
    sft "$d/m0" "$base" "$d/seed_sft.jsonl" "$seed_steps" "$s"
  fi
  evaluate "$d/m0/model" "$d/eval_m0.json"
  log "seed $s: seed model answers $(summary "$d/eval_m0.json")"

  for strategy in $strategies control; do
    if [[ $strategy == control ]]; then
      round_budgets=0
    else
      round_budgets=$budgets
      max_budget=0
      for b in $budgets; do (( b > max_budget )) && max_budget=$b; done
      if [[ ! -f $d/rank_$strategy.jsonl ]]; then
        t0=$(date +%s)
        # The pool: train minus the seed labels; selection never reads its sql.
        "$lathe" data select --model "$d/m0/model" --db "$db" --pool "$data/train.jsonl" --exclude "$d/seed.jsonl" \
          --strategy "$strategy" --count "$max_budget" --samples "$samples" --temperature "$temperature" \
          --max-new-tokens 128 --batch-size 16 --seed "$s" --threads "$threads" \
          --out "$d/rank_$strategy.jsonl.tmp" > /dev/null 2> "$d/rank_$strategy.log"
        mv "$d/rank_$strategy.jsonl.tmp" "$d/rank_$strategy.jsonl"
        log "seed $s: ranked the pool by $strategy ($(( $(date +%s) - t0 )) s)"
      fi
    fi
    for b in $round_budgets; do
      run=$d/$strategy-$b
      if [[ ! -f $run/eval.json ]]; then
        t0=$(date +%s)
        if (( b == 0 )); then cp "$d/seed.jsonl" "$d/labels_$strategy-$b.jsonl"
        else head -n "$b" "$d/rank_$strategy.jsonl" | cat "$d/seed.jsonl" - > "$d/labels_$strategy-$b.jsonl"; fi
        "$lathe" data format --in "$d/labels_$strategy-$b.jsonl" --sft "$d/sft_$strategy-$b.jsonl" > /dev/null
        rm -rf "$run"
        sft "$run" "$d/m0/model" "$d/sft_$strategy-$b.jsonl" "$round_steps" "$s"
        evaluate "$run/model" "$run/eval.json"
        log "seed $s: $strategy, budget $b: $(summary "$run/eval.json") ($(( $(date +%s) - t0 )) s)"
      fi
    done
  done
done

# One JSON line per model, then a table (mean over seeds and each seed's figure).
python3 - "$out" "$seeds" "$budgets" "$strategies" "$seed_size" <<'PY'
import json, os, sys
out, seeds, budgets, strategies, seed_size = sys.argv[1], sys.argv[2].split(), sys.argv[3].split(), sys.argv[4].split(), int(sys.argv[5])
rows = []
def add(seed, strategy, budget, path):
    d = json.load(open(path))
    rows.append({"seed": int(seed), "strategy": strategy, "budget": budget, "labels": seed_size + budget,
                 "correct": d["correct"], "examples": d["examples"], "accuracy": d["accuracy"]})
for s in seeds:
    add(s, "seed model", 0, f"{out}/seed-{s}/eval_m0.json")
    add(s, "control (seed labels, more steps)", 0, f"{out}/seed-{s}/control-0/eval.json")
    for strategy in strategies:
        for b in budgets:
            add(s, strategy, int(b), f"{out}/seed-{s}/{strategy}-{b}/eval.json")
with open(f"{out}/results.jsonl", "w") as f:
    for r in rows: f.write(json.dumps(r) + "\n")
table = ["| strategy | budget | labels | mean accuracy | per seed (correct / test questions) |", "|---|---|---|---|---|"]
keys = []
for r in rows:
    k = (r["strategy"], r["budget"])
    if k not in keys: keys.append(k)
for k in keys:
    group = [r for r in rows if (r["strategy"], r["budget"]) == k]
    mean = sum(r["accuracy"] for r in group) / len(group)
    per = ", ".join(f"{r['correct']} / {r['examples']}" for r in group)
    table.append(f"| {k[0]} | {k[1]} | {group[0]['labels']} | {100 * mean:.1f} % | {per} |")
open(f"{out}/results.md", "w").write("\n".join(table) + "\n")
print("\n".join(table))
PY
log "done in $(( $(date +%s) - start )) s"
