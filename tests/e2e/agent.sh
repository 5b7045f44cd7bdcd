#!/usr/bin/env bash
# Black-box checks of `lathe agent`: `sql` prints rows or refuses (exit 1, one line, the
# database file unchanged), config errors name the key, `ask --json` / `eval` against a
# scripted endpoint (tests/e2e/fake_openai.py; skipped without python3), and a question and
# an eval end to end on a tiny random model through the `lathe serve` that `--model-dir`
# starts. $1 = the lathe binary.
set -euo pipefail
lathe="$1"
here=$(cd "$(dirname "$0")" && pwd)
work=$(mktemp -d)
fake_pid=""
cleanup() {
  if [[ -n $fake_pid ]]; then kill "$fake_pid" 2>/dev/null || true; fi
  rm -rf "$work"
}
trap cleanup EXIT
fail() { echo "FAIL: $*" >&2; exit 1; }

expect_error() {  # expect_error PATTERN COMMAND...
  local pattern=$1; shift
  set +e; err=$("$@" 2>&1 >/dev/null); rc=$?; set -e
  [[ $rc == 1 ]] || fail "exit $rc (expected 1) for: $* -> $err"
  [[ $(echo "$err" | wc -l) == 1 ]] || fail "error is not one line for: $* -> $err"
  echo "$err" | grep -q -- "$pattern" || fail "error lacks '$pattern': $err"
}

db="$work/inventory.sqlite"
"$lathe" data db --vehicles 200 --out "$db" >/dev/null
sum_before=$(sha256sum "$db" | cut -d' ' -f1)

# sql: rows for a SELECT, a refusal (exit 1) for anything else.
out=$("$lathe" agent sql --db "$db" "SELECT count(*) AS n FROM vehicles")
[[ $(echo "$out" | tail -1) == "200" ]] || fail "agent sql printed: $out"
json=$("$lathe" agent sql --db "$db" --json "SELECT name FROM stores ORDER BY store_id LIMIT 2")
[[ $json == *'"columns":["name"]'* && $json == *'"rows":[["'*'"],["'*'"]]'* && $json == *'"status":"ok"'* ]] \
  || fail "agent sql --json: $json"
expect_error "agent sql: refused: only SELECT or WITH" "$lathe" agent sql --db "$db" "DROP TABLE vehicles"
expect_error "agent sql: refused: more than one statement" "$lathe" agent sql --db "$db" "SELECT 1; DELETE FROM vehicles"
expect_error "agent sql: stopped: ran past the time limit of 0.2 s" \
  "$lathe" agent sql --db "$db" --set guard.timeout_seconds=0.2 "SELECT count(*) FROM vehicles a, vehicles b, vehicles c, vehicles d"
expect_error "agent sql: error: no such column: nope" "$lathe" agent sql --db "$db" "SELECT nope FROM vehicles"
set +e; json=$("$lathe" agent sql --db "$db" --json "UPDATE vehicles SET status = 'sold'" 2>/dev/null); rc=$?; set -e
[[ $rc == 1 && $json == *'"status":"refused"'* && $json == *'"rows":[]'* ]] || fail "refusal --json (exit $rc): $json"
out=$("$lathe" agent sql --db "$db" --set guard.max_rows=3 "SELECT vehicle_id FROM vehicles")
echo "$out" | grep -q "stopped at the row cap of 3 rows" || fail "no truncation note: $out"
[[ $(sha256sum "$db" | cut -d' ' -f1) == "$sum_before" ]] || fail "the database file changed"

# Bad input: one line naming the problem.
expect_error "guard.max_row" "$lathe" agent sql --db "$db" --set guard.max_row=3 "SELECT 1"
expect_error "does not exist" "$lathe" agent sql --db "$work/missing.sqlite" "SELECT 1"
expect_error "give --endpoint URL" "$lathe" agent ask --db "$db" "How many BMWs?"
expect_error "cannot connect" "$lathe" agent ask --endpoint http://127.0.0.1:9/v1 --model m --db "$db" "How many BMWs?"
"$lathe" agent --config-docs | grep -q '| `agent.max_attempts` | int | `3` |' || fail "--config-docs lacks agent.max_attempts"

if command -v python3 >/dev/null; then
  cat > "$work/script.json" <<'JSON'
{"宝马有几辆？": ["<reasoning>\nx\n</reasoning>\n<answer>\nSELECT count(*) FROM vehicle WHERE brand = '宝马'\n</answer>\n",
                 "<reasoning>\nCount BMWs.\n</reasoning>\n<answer>\nSELECT count(*) FROM vehicles WHERE brand = '宝马'\n</answer>\n"],
 "How many stores?": ["<reasoning>\nCount stores.\n</reasoning>\n<answer>\nSELECT count(*) FROM stores\n</answer>\n"]}
JSON
  python3 "$here/fake_openai.py" "$work/script.json" "$work/port" & fake_pid=$!
  for _ in $(seq 100); do [[ -s $work/port ]] && break; sleep 0.1; done
  endpoint="http://127.0.0.1:$(cat "$work/port")/v1"
  bmw=$("$lathe" agent sql --db "$db" "SELECT count(*) FROM vehicles WHERE brand = '宝马'" | tail -1)
  json=$("$lathe" agent ask --endpoint "$endpoint" --model inventory --db "$db" --json --trace "$work/trace.jsonl" "宝马有几辆？")
  python3 - "$json" "$bmw" <<'PY' || fail "ask --json: $json"
import json, sys
a = json.loads(sys.argv[1])
assert a["ok"] and a["language"] == "zh", a
assert a["sql"] == "SELECT count(*) FROM vehicles WHERE brand = '宝马'", a["sql"]
assert a["rows"] == [[sys.argv[2]]], a["rows"]
assert a["answer"] == "查询结果是 %s。" % sys.argv[2], a["answer"]
assert [t["status"] for t in a["attempts"]] == ["error", "ok"], a["attempts"]
assert a["tokens"] == {"prompt": 100, "completion": 20, "total": 120}, a["tokens"]
PY
  steps=$(python3 -c 'import json,sys; print(" ".join(json.loads(l)["step"] for l in open(sys.argv[1])))' "$work/trace.jsonl")
  [[ $steps == "llm extract guard execute llm extract guard execute answer agent" ]] || fail "trace steps: $steps"
  out=$("$lathe" agent ask --endpoint "$endpoint" --model inventory --db "$db" "How many stores?")
  echo "$out" | head -1 | grep -q "^The answer is [0-9]*\.$" || fail "ask printed: $out"
  echo "$out" | grep -q "^SQL: SELECT count(\*) FROM stores$" || fail "ask lacks the SQL: $out"
  expect_error "--model NAME is required with --endpoint (the server offers: inventory)" \
    "$lathe" agent ask --endpoint "$endpoint" --db "$db" "How many stores?"
  set +e; out=$("$lathe" agent ask --endpoint "$endpoint" --model inventory --db "$db" --set agent.max_attempts=2 "Unknown?" 2>"$work/err"); rc=$?; set -e
  [[ $rc == 1 ]] || fail "unanswerable question exited $rc"
  grep -q "agent: no query ran after 2 attempts" "$work/err" || fail "unanswered: $(cat "$work/err")"
  printf '%s\n' '{"question": "宝马有几辆？", "sql": "SELECT count(*) FROM vehicles WHERE brand = '"'"'宝马'"'"'", "family": "count"}' \
    '{"question": "How many stores?", "sql": "SELECT count(*) FROM stores", "family": "stores"}' \
    '{"question": "Unknown?", "sql": "SELECT 1", "family": "stores"}' > "$work/questions.jsonl"
  table=$("$lathe" agent eval --endpoint "$endpoint" --model inventory --db "$db" --questions "$work/questions.jsonl" \
    --out "$work/eval.json" 2>/dev/null)
  echo "$table" | grep -qF "| execution accuracy | 66.7% (2/3) |" || fail "eval table: $table"
  echo "$table" | grep -qF "| retries used | 3 |" || fail "eval table: $table"
  python3 -c 'import json,sys; m=json.load(open(sys.argv[1]))["models"][0]; assert m["correct"]==2 and m["per_family"]["stores"]["correct"]==1, m' \
    "$work/eval.json" || fail "eval JSON"
  kill "$fake_pid"; wait "$fake_pid" 2>/dev/null || true; fake_pid=""
else
  echo "note: python3 is missing; the scripted-endpoint checks are skipped"
fi

# End to end through `lathe serve` (started by --model-dir) on a tiny random model with an
# adapter: the loop runs against the real server; a random model writes no SQL, so the
# question goes unanswered after the attempts (exit 1) with every attempt on record.
if ! "$lathe" --help | grep -q '^  serve '; then
  echo "note: this lathe has no \`serve\` command; the end-to-end check through lathe serve is skipped"
elif ! command -v python3 >/dev/null; then
  echo "note: python3 is missing (it writes the test adapter); the check through lathe serve is skipped"
else
  "$lathe" init-model --preset tiny --out "$work/tiny" --seed 3 >/dev/null
  python3 "$here/write_lora_adapter.py" "$work/tiny" "$work/adapter" --rank 8 --seed 1
  set +e
  json=$("$lathe" agent ask --model-dir "$work/tiny" --adapter "$work/adapter" --db "$db" --json \
    --trace "$work/serve-trace.jsonl" --set agent.max_attempts=2 --set model.max_tokens=8 \
    --set prompt.samples_per_column=1 "How many BMWs?" 2>"$work/err")
  rc=$?
  set -e
  [[ $rc == 1 ]] || fail "ask through lathe serve exited $rc: $(cat "$work/err")"
  grep -q "agent: no query ran after 2 attempts" "$work/err" || fail "through lathe serve: $(cat "$work/err")"
  python3 - "$json" <<'PY' || fail "ask --json through lathe serve: $json"
import json, sys
a = json.loads(sys.argv[1])
assert a["model"] == "inventory" and not a["ok"], a
assert len(a["attempts"]) == 2, a["attempts"]
for t in a["attempts"]:
    assert t["status"] == "no_sql" and t["tokens"]["prompt"] > 0 and 1 <= t["tokens"]["completion"] <= 8, t
PY
  [[ $(grep -c '"step":"llm"' "$work/serve-trace.jsonl") == 2 ]] || fail "trace through lathe serve"
  # eval compares the base and the adapter the server was started with.
  table=$("$lathe" agent eval --model-dir "$work/tiny" --adapter "$work/adapter" --db "$db" \
    --questions "$work/questions.jsonl" --limit 1 --set agent.max_attempts=1 --set model.max_tokens=4 \
    --set prompt.samples_per_column=0 2>"$work/err") || fail "eval through lathe serve: $(cat "$work/err")"
  echo "$table" | grep -qF "| metric | base | inventory |" || fail "eval through lathe serve: $table"
  echo "$table" | grep -qF "| execution accuracy | 0.0% (0/1) | 0.0% (0/1) |" || fail "eval through lathe serve: $table"
fi
echo "agent: ok"
