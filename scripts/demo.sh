#!/usr/bin/env bash
# Set-up (scripts/setup.sh), then the main job: configs/inventory-tiny.yaml end to end on this
# machine's cores (17 to 20 minutes on 2, docs/pipeline.md), then where the report is and a few sample answers.
# Running it again resumes: finished stages are skipped (docs/pipeline.md).
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/setup.sh
lathe=build/cli/lathe
run=${LATHE_DEMO_RUN:-runs/inventory-tiny}

"$lathe" pipeline --config configs/inventory-tiny.yaml --run-dir "$run"

echo
echo "== sample answers of the GRPO model on held-out questions ($run/eval/predictions-grpo.jsonl)"
python3 - "$run/eval/predictions-grpo.jsonl" <<'PY' || head -n 5 "$run/eval/predictions-grpo.jsonl"
import json, sys
rows = [json.loads(l) for l in open(sys.argv[1], encoding="utf-8") if l.strip()]
shown = [r for r in rows if r["correct"]][:3] + [r for r in rows if not r["correct"]][:2]
for r in shown:
    print(("✓ " if r["correct"] else "✗ ") + r["question"])
    print("    " + (r["sql"] or "(no SQL)"))
PY
echo
echo "== the SQL agent through lathe serve (the GRPO model) on sample questions ($run/serve/answers.jsonl)"
python3 - "$run/serve/answers.jsonl" <<'PY' || head -n 4 "$run/serve/answers.jsonl"
import json, sys
for line in open(sys.argv[1], encoding="utf-8"):
    if line.strip():
        a = json.loads(line)
        print("Q: " + a["question"])
        print("   SQL: " + (a.get("sql") or "(none)"))
        print("   A: " + a["answer"])
PY
echo
echo "report: $run/report.html (open it in a browser; it needs no network)"
