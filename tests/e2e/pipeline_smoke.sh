#!/usr/bin/env bash
# `lathe pipeline` black-box on configs/inventory-smoke.yaml: every stage runs on tiny sizes and
# leaves well-formed outputs (the serve stage: agent answers and traces through lathe serve), the
# SFT (and pretraining) loss falls, a rerun skips every stage, changed SFT keys (LoRA SFT instead
# of full fine-tuning) rerun SFT and the stages after it only, and bad input fails at once with
# one line naming the thing.
# $1 = path of the lathe binary. Exit 77 = skipped (python3 absent: it reads the JSON outputs).
set -euo pipefail
lathe="$1"
command -v python3 >/dev/null || { echo "skip: python3 absent (used to check the outputs)"; exit 77; }
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
run=$work/run
config=configs/inventory-smoke.yaml

start=$SECONDS
"$lathe" pipeline --config "$config" --run-dir "$run" threads_unused=0 >/dev/null 2>"$work/err0" && {
  echo "FAIL: an unknown override was accepted"; exit 1; } || true
grep -q "unknown key threads_unused" "$work/err0" || { echo "FAIL: bad override error: $(cat "$work/err0")"; exit 1; }

"$lathe" pipeline --config "$config" --run-dir "$run" > "$work/out1" 2> "$work/log1" \
  || { echo "FAIL: pipeline failed"; tail -20 "$work/log1"; exit 1; }
echo "first run: $((SECONDS - start)) s"
grep -q "^report: $run/report.html" "$work/out1" || { echo "FAIL: no report path printed"; cat "$work/out1"; exit 1; }
# A brand is one piece in the SQL and in the question alike (tokenizer.value_symbols).
"$lathe" tokenize --json --model "$run/tokenizer" "SELECT COUNT(*) FROM vehicles WHERE brand = '宝马'" > "$work/tok_sql"
"$lathe" tokenize --json --model "$run/tokenizer" "宝马在上海有几辆？" > "$work/tok_question"

work="$work" python3 - "$run" <<'PY'
import json, os, sys
run = sys.argv[1]
def rows(path):
    with open(os.path.join(run, path), encoding="utf-8") as f:
        return [json.loads(l) for l in f if l.strip()]
def must(cond, what):
    if not cond: sys.exit("FAIL: " + what)
for stage in ["data", "corpus", "tokenizer", "pretrain", "sft", "grpo", "eval", "serve"]:
    rec = json.load(open(f"{run}/{stage}/stage.json"))
    must(rec["stage"] == stage and len(rec["key"]) == 16, f"{stage}/stage.json malformed")
manifest = json.load(open(f"{run}/data/manifest.json"))
must(manifest["split"]["train"] > 0 and manifest["split"]["test"] > 0, "dataset splits empty")
must(os.path.getsize(f"{run}/data/inventory.sqlite") > 0, "no inventory database")
corpus = rows("corpus/corpus_train.jsonl")
sql_rows = [r for r in corpus if r.get("family") != "glossary"]
glossary = [r for r in corpus if r.get("family") == "glossary"]
must(len(sql_rows) == 240 and all(len(r["messages"]) == 3 for r in sql_rows), "corpus rows malformed")
corpus_stage = json.load(open(f"{run}/corpus/stage.json"))["summary"]
must(len(glossary) == corpus_stage["glossary"] > 0 and all(len(r["messages"]) == 2 for r in glossary),
     "glossary rows malformed")
must({r["language"] for r in corpus} == {"zh", "en"}, "corpus lacks a language")
must(os.path.getsize(f"{run}/tokenizer/tokenizer.model") > 0, "no tokenizer.model")
must(json.load(open(f"{run}/tokenizer/stage.json"))["summary"]["value_symbols"] > 0, "no value symbols")
for name in ["tok_sql", "tok_question"]:
    pieces = json.load(open(os.path.join(os.environ["work"], name)))["pieces"]
    must("宝马" in pieces, f"宝马 is not one piece in {name}: {pieces}")
cfg = json.load(open(f"{run}/pretrain/model/config.json"))
must(cfg["vocab_size"] == 1200, f"pretrained vocab {cfg['vocab_size']} != the tokenizer's 1200")
must(os.path.exists(f"{run}/pretrain/model/tokenizer.model"), "pretrained model ships no tokenizer")
def losses(stage):
    return [r["loss"] for r in rows(f"{stage}/metrics.jsonl") if "loss" in r]
for stage in ["pretrain", "sft"]:
    l = losses(stage)
    must(len(l) == 16, f"{stage}: {len(l)} loss lines")
    must(sum(l[-3:]) / 3 < sum(l[:3]) / 3, f"{stage} loss did not fall: {l}")
# Full fine-tuning: SFT writes a model, and GRPO a new adapter over it.
must(json.load(open(f"{run}/sft/model/config.json"))["vocab_size"] == 1200, "SFT model config malformed")
must(not os.path.exists(f"{run}/sft/adapter"), "full fine-tuning left an SFT adapter")
adapter = json.load(open(f"{run}/grpo/adapter/adapter_config.json"))
must(adapter["peft_type"] == "LORA" and adapter["r"] == 8 and len(adapter["target_modules"]) == 7,
     f"GRPO adapter config malformed: {adapter}")
must(adapter["base_model_name_or_path"] == f"{run}/sft/model", f"GRPO adapter base: {adapter['base_model_name_or_path']}")
must(os.path.getsize(f"{run}/grpo/adapter/adapter_model.safetensors") > 0, "no GRPO adapter")
g = rows("grpo/metrics.jsonl")
must(len(g) == 2 and all("rewards/sql_execution/mean" in r and "kl" in r for r in g), "GRPO metrics malformed")
must(len(rows("grpo/rollouts.jsonl")) == 8, "GRPO rollouts missing")
res = json.load(open(f"{run}/eval/results.json"))
must(set(res["models"]) == {"base", "sft", "grpo"}, f"eval models {list(res['models'])}")
must(0 < res["questions"] <= 12, f"eval answered {res['questions']} questions (eval.max_questions is 12)")
for name, m in res["models"].items():
    must(m["overall"]["examples"] == res["questions"], f"eval {name}: {m['overall']}")
    must(len(rows(f"eval/predictions-{name}.jsonl")) == res["questions"], f"eval {name}: predictions missing")
answers = rows("serve/answers.jsonl")
must(len(answers) == 2 and all(a["model"] == "grpo" and len(a["attempts"]) == 1 for a in answers),
     f"serve: agent answers malformed: {answers}")
must(all(a["attempts"][0]["tokens"]["prompt"] > 0 for a in answers), "serve: the prompts reached no model")
llm_steps = [t for t in rows("serve/traces.jsonl") if t.get("step") == "llm"]
must(len(llm_steps) == 2, f"serve: {len(llm_steps)} llm steps traced, expected 2")
must(json.load(open(f"{run}/serve/stage.json"))["summary"]["questions"] == 2, "serve summary")
html = open(f"{run}/report.html", encoding="utf-8").read()
must(html.count('<svg class="chart"') == 5 and 'class="series"' in html, "report charts missing")
must("Agent answers through lathe serve" in html, "report lacks the agent answers")
print("outputs: ok")
PY

# A rerun resumes: every stage is current.
start=$SECONDS
"$lathe" pipeline --config "$config" --run-dir "$run" > "$work/out2" 2> "$work/log2"
skipped=$(grep -c "up to date, skipped" "$work/out2")
[[ $skipped == 8 ]] || { echo "FAIL: rerun skipped $skipped of 8 stages"; cat "$work/out2"; exit 1; }
(( SECONDS - start < 30 )) || { echo "FAIL: a rerun of current stages took $((SECONDS - start)) s"; exit 1; }

# Changed SFT keys rerun sft and what reads it; earlier stages stay. LoRA SFT this time: GRPO
# continues its adapter, and eval and serve load both adapters over the pretrained base.
"$lathe" pipeline --config "$config" --run-dir "$run" sft.training.max_steps=12 sft.lora.enabled=true \
  > "$work/out3" 2> "$work/log3" || { echo "FAIL: LoRA rerun failed"; tail -20 "$work/log3"; exit 1; }
for stage in data corpus tokenizer pretrain; do
  grep -q "^  $stage .*up to date, skipped" "$work/out3" || { echo "FAIL: $stage reran"; cat "$work/out3"; exit 1; }
done
for stage in sft grpo eval serve; do
  if grep -q "^  $stage .*up to date, skipped" "$work/out3"; then echo "FAIL: $stage was skipped"; cat "$work/out3"; exit 1; fi
done
n=$(python3 -c "import json,sys; print(sum(1 for l in open(sys.argv[1]) if '\"loss\"' in l))" "$run/sft/metrics.jsonl")
[[ $n == 12 ]] || { echo "FAIL: rerun SFT has $n loss lines, expected 12"; exit 1; }
python3 - "$run" <<'PY'
import json, sys
run = sys.argv[1]
def must(cond, what):
    if not cond: sys.exit("FAIL: " + what)
import os
must(not os.path.exists(f"{run}/sft/model"), "LoRA SFT left the full-fine-tuning model")
sft = json.load(open(f"{run}/sft/adapter/adapter_config.json"))
grpo = json.load(open(f"{run}/grpo/adapter/adapter_config.json"))
must(sft["r"] == 8 and grpo["r"] == 8, "LoRA rerun adapters malformed")
must(grpo["base_model_name_or_path"] == f"{run}/pretrain/model", f"GRPO adapter base: {grpo['base_model_name_or_path']}")
res = json.load(open(f"{run}/eval/results.json"))
must(set(res["models"]) == {"base", "sft", "grpo"}, f"eval models {list(res['models'])}")
answers = [json.loads(l) for l in open(f"{run}/serve/answers.jsonl") if l.strip()]
must(len(answers) == 2 and all(a["model"] == "grpo" for a in answers), "LoRA rerun: serve answers malformed")
PY

# Bad input: one line naming the thing, before any work (no stage folder appears).
expect_error() {  # expect_error PATTERN RUN_DIR ARGS...
  local pattern=$1 dir=$2; shift 2
  if "$lathe" pipeline --config "$config" --run-dir "$dir" "$@" > /dev/null 2> "$work/err"; then
    echo "FAIL: accepted $*"; exit 1
  fi
  [[ $(wc -l < "$work/err") == 1 ]] || { echo "FAIL: not one line for $*:"; cat "$work/err"; exit 1; }
  grep -qF -- "$pattern" "$work/err" || { echo "FAIL: '$pattern' not in: $(cat "$work/err")"; exit 1; }
  [[ ! -e $dir/data ]] || { echo "FAIL: work started before the error for $*"; exit 1; }
}
expect_error '"tokeniser" is not a valid choice' "$work/bad1" "run.stages=[data, tokeniser]"
expect_error "$work/no-model" "$work/bad2" "run.stages=[data, sft, eval]" "base.path=$work/no-model" "eval.models=[base, sft]"
touch "$work/a-file"
expect_error "run folder $work/a-file/run" "$work/a-file/run"
mkdir -p "$work/empty-data"
for f in inventory.sqlite sft_train.jsonl sft_val.jsonl grpo_train.jsonl test.jsonl; do : > "$work/empty-data/$f"; done
expect_error "dataset $work/empty-data/sft_train.jsonl has no rows" "$work/bad3" "data.dir=$work/empty-data"
echo "pipeline smoke e2e: ok"
