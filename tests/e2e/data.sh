#!/usr/bin/env bash
# Black-box checks of `lathe data …`: deterministic db, CSV import errors by file:line with a
# count, the stages one by one, build with an imported pool and the select stage, stats with
# token lengths, select/eval with a random tiny model, and one-line errors on bad input.
# $1 = the lathe binary.
set -euo pipefail
lathe="$1"
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
source "$(dirname "$0")/support.bash"
expect_build_error() {  # like expect_error, for build: info lines come first, the error is the last line
  local pattern=$1; shift
  set +e; err=$("$@" 2>&1 >/dev/null); rc=$?; set -e
  [[ $rc == 1 ]] || fail "exit $rc (expected 1) for: $* -> $err"
  last=$(echo "$err" | tail -1)
  [[ $last == "lathe: "*"$pattern"* ]] || fail "last line is not the error naming '$pattern': $err"
}
lines() { grep -c . "$1"; }

# The generator: same seed, same bytes.
"$lathe" data db --vehicles 300 --seed 4 --out "$work/a.sqlite" 2>/dev/null
"$lathe" data db --vehicles 300 --seed 4 --out "$work/b.sqlite" 2>/dev/null
cmp -s "$work/a.sqlite" "$work/b.sqlite" || fail "same seed gave different database files"

# CSV import: good rows in, bad rows reported as FILE:LINE with a count.
csv="$work/export.csv"
cat > "$csv" <<'EOF'
vehicle_id,brand,model,model_year,body_type,fuel_type,color,pickup_date,guide_price,status,store,city,region
LSVAB1234CD567890,大众,朗逸,2023,sedan,gasoline,白色,2024-03-01,120000,in_stock,上海浦东店,上海,华东
LSVAB1234CD56789X,大众,朗逸,2023,sedan,gasoline,白色,2024-02-30,120000,in_stock,上海浦东店,上海,华东
LSVAB1234CD567891,大众,朗逸,2023,sedan,gasoline,白色,2024-03-02,cheap,in_stock,上海浦东店,上海,华东
EOF
out=$("$lathe" data db --from-csv "$csv" --out "$work/csv.sqlite" 2>"$work/csv.err")
[[ $out == *"imported 1 vehicles"*"rejected 2 rows"* ]] || fail "csv import summary: $out"
grep -q "$csv:3: pickup_date" "$work/csv.err" || fail "no file:line for the bad date: $(cat "$work/csv.err")"
grep -q "$csv:4: guide_price" "$work/csv.err" || fail "no file:line for the bad price: $(cat "$work/csv.err")"

# The stages one by one.
"$lathe" data collect --db "$work/a.sqlite" --per-family 4 --out "$work/ex.jsonl" 2>/dev/null >/dev/null
"$lathe" data label --db "$work/a.sqlite" --in "$work/ex.jsonl" --out "$work/labelled.jsonl" 2>/dev/null >/dev/null
"$lathe" data split --in "$work/labelled.jsonl" --out "$work/split" --holdout count_brand 2>/dev/null >/dev/null
grep -q '"family":"count_brand"' "$work/split/train.jsonl" && fail "held-out family in train"
grep -q '"family":"count_brand"' "$work/split/test.jsonl" || fail "held-out family missing from test"
"$lathe" data format --in "$work/split/train.jsonl" --sft "$work/sft.jsonl" --grpo "$work/grpo.jsonl" >/dev/null
[[ $(lines "$work/sft.jsonl") == $(lines "$work/split/train.jsonl") ]] || fail "sft rows != train examples"

# build with an imported pool (questions without SQL) and the select stage.
cat > "$work/pool.jsonl" <<'EOF'
{"question": "宝马还有几辆在库？"}
{"question": "How many EVs are in stock in Shanghai?"}
{"question": "Which store has the most SUVs?"}
{"question": "理想L7的平均指导价是多少？"}
{"question": "How many cars did we sell?", "sql": "SELECT COUNT(*) FROM vehicles WHERE status = 'sold'"}
EOF
cat > "$work/cfg.yaml" <<EOF
db: {vehicles: 300, seed: 2}
collect: {per_family: 4, import: [$work/pool.jsonl]}
select: {count: 3, strategy: random, seed: 5}
EOF
"$lathe" data build --config "$work/cfg.yaml" --out "$work/ds" 2>/dev/null >/dev/null
[[ $(lines "$work/ds/pool.jsonl") == 4 ]] || fail "pool should hold the 4 imported questions without SQL"
[[ $(lines "$work/ds/selection.jsonl") == 3 ]] || fail "selection should hold 3 rows"
grep -q '"rank":1,' "$work/ds/selection.jsonl" || fail "selection rows lack a rank"
grep -q '"strategy":"random"' "$work/ds/selection.jsonl" || fail "selection rows lack the strategy"
# The same selection from the command line.
"$lathe" data select --pool "$work/ds/pool.jsonl" --strategy random --count 3 --seed 5 --out "$work/sel.jsonl" >/dev/null 2>&1
cmp -s "$work/sel.jsonl" "$work/ds/selection.jsonl" || fail "data select and data build chose differently"
"$lathe" data select --pool "$work/ds/pool.jsonl" --exclude "$work/sel.jsonl" --count 9 --out "$work/rest.jsonl" >/dev/null 2>&1
[[ $(lines "$work/rest.jsonl") == 1 ]] || fail "--exclude should leave 1 question"

stats=$("$lathe" data stats "$work/ds")
[[ $stats == *"train: "*"families ("* ]] || fail "stats: $stats"

# A random tiny model: select by entropy and disagreement, eval, token-length stats.
"$lathe" init-model --preset tiny --out "$work/tiny" --seed 3 >/dev/null
"$lathe" data select --model "$work/tiny" --db "$work/ds/inventory.sqlite" --pool "$work/ds/pool.jsonl" \
  --strategy disagreement --samples 2 --max-new-tokens 4 --count 2 --out "$work/dis.jsonl" 2>/dev/null >/dev/null
grep -q '"samples":2' "$work/dis.jsonl" || fail "disagreement details: $(cat "$work/dis.jsonl")"
"$lathe" data select --model "$work/tiny" --pool "$work/ds/pool.jsonl" --strategy entropy --max-new-tokens 4 \
  --count 4 --out "$work/ent.jsonl" 2>/dev/null >/dev/null
[[ $(lines "$work/ent.jsonl") == 4 ]] || fail "entropy selection size"
head -3 "$work/ds/train.jsonl" > "$work/test3.jsonl"
acc=$("$lathe" data eval --model "$work/tiny" --db "$work/ds/inventory.sqlite" --in "$work/test3.jsonl" \
  --max-new-tokens 4 --json 2>/dev/null)
[[ $acc == *'"examples":3'* && $acc == *'"accuracy":0'* ]] || fail "eval of a random model: $acc"
json=$("$lathe" data stats "$work/ds" --tokenizer "$work/tiny" --json)
[[ $json == *'"sft_row_tokens"'* ]] || fail "stats --tokenizer lacks token lengths"

# Bad input: one line naming the problem.
expect_error "needs a model" "$lathe" data select --pool "$work/ds/pool.jsonl" --strategy entropy --out "$work/x.jsonl"
expect_error "valid: random, entropy, disagreement" "$lathe" data select --pool "$work/ds/pool.jsonl" \
  --strategy best --out "$work/x.jsonl"
printf '{"id": "a"}\n' > "$work/bad_pool.jsonl"
expect_error "bad_pool.jsonl:1: missing" "$lathe" data select --pool "$work/bad_pool.jsonl" --out "$work/x.jsonl"
expect_error "has no gold SQL" "$lathe" data eval --model "$work/tiny" --db "$work/ds/inventory.sqlite" \
  --in "$work/ds/pool.jsonl"
printf 'select:\n  strategy: disagreement\n  count: 2\n' > "$work/bad.yaml"
expect_build_error "needs select.model" "$lathe" data build --config "$work/bad.yaml" --out "$work/never"
printf "db: {vehicles: 50}\nselect:\n  count: 2\n" > "$work/empty_pool.yaml"
expect_build_error "unlabeled pool is empty" "$lathe" data build --config "$work/empty_pool.yaml" --out "$work/never"
[[ ! -e $work/never ]] || fail "a failed build left its output folder"
echo "data: ok"
