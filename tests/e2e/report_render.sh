#!/usr/bin/env bash
# `lathe report` rendered by a real browser: a run folder with made-up metrics becomes
# report.html, headless Chromium loads it (offline, fresh profile) and its rendered DOM has every
# chart with a drawn path of several points; a screenshot is not blank.
# $1 = path of the lathe binary. Exit 77 = skipped (chromium or python3 absent).
set -euo pipefail
lathe="$1"
chromium=$(command -v chromium || command -v chromium-browser || true)
[[ -n $chromium ]] || { echo "skip: chromium is not installed (scripts/test.sh installs Debian's chromium where it can)"; exit 77; }
command -v python3 >/dev/null || { echo "skip: python3 absent (used to read the DOM)"; exit 77; }
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
run=$work/run
mkdir -p "$run/pretrain" "$run/sft" "$run/grpo" "$run/eval"
echo "run: {seed: 42}" > "$run/pipeline.yaml"
python3 - "$run" <<'PY'
import json, sys
run = sys.argv[1]
def lines(path, rows):
    with open(f"{run}/{path}", "w") as f:
        for r in rows: f.write(json.dumps(r, ensure_ascii=False) + "\n")
loss = [{"step": s, "loss": 4.0 / s} for s in range(1, 31)] + [{"step": s, "eval_loss": 3.0 / s} for s in (10, 20, 30)]
lines("pretrain/metrics.jsonl", loss)
lines("sft/metrics.jsonl", loss)
lines("grpo/metrics.jsonl", [{"step": s, "reward": 1 + s / 10, "rewards/sql_execution/mean": s / 10,
                              "rewards/xml_strict/mean": 0.5, "kl": 0.002 * s, "completions/mean_length": 50 - s,
                              "completions/min_length": 30, "completions/max_length": 70} for s in range(1, 11)])
lines("grpo/rollouts.jsonl", [{"step": 10, "prompt": "宝马还有几辆在库？", "completion": "<answer>\nSELECT 1\n</answer>\n",
                               "reward": 2.5, "advantage": 0.5, "rewards": {"sql_execution": 2.0}}])
t = lambda c, n: {"correct": c, "examples": n, "accuracy": c / n}
m = {"overall": t(3, 4), "seen_families": t(3, 3), "unseen_families": t(0, 1), "no_answer": 0, "sql_errors": 0,
     "per_language": {"zh": t(2, 2), "en": t(1, 2)}, "per_family": {"count_brand": t(3, 4)}}
json.dump({"split": "test", "questions": 4, "models": {"base": m, "sft": m, "grpo": m}}, open(f"{run}/eval/results.json", "w"))
PY
out=$("$lathe" report "$run")
[[ $out == "$run/report.html" && -s $run/report.html ]] || { echo "FAIL: lathe report printed '$out'"; exit 1; }

flags=(--headless --no-sandbox --disable-gpu --disable-quic --no-first-run --disable-background-networking
       --disable-component-update --disable-sync --user-data-dir="$work/profile")
timeout 120 "$chromium" "${flags[@]}" --dump-dom "file://$run/report.html" > "$work/dom.html" 2> "$work/chromium.log" \
  || { echo "FAIL: chromium --dump-dom failed"; tail -5 "$work/chromium.log"; exit 1; }
timeout 120 "$chromium" "${flags[@]}" --window-size=1280,2400 --screenshot="$work/shot.png" "file://$run/report.html" \
  >> "$work/chromium.log" 2>&1 || { echo "FAIL: chromium --screenshot failed"; tail -5 "$work/chromium.log"; exit 1; }

python3 - "$work/dom.html" "$work/shot.png" <<'PY'
import re, sys, os
dom = open(sys.argv[1], encoding="utf-8").read()
charts = re.findall(r'<svg class="chart".*?</svg>', dom, re.S)
assert len(charts) == 5, f"expected 5 charts in the rendered DOM, found {len(charts)}"
for svg in charts:
    title = re.search(r'class="title">([^<]*)<', svg).group(1)
    paths = re.findall(r'<path class="series"[^>]*\sd="([^"]*)"', svg)
    assert paths, f"chart '{title}' has no series path"
    points = [len(re.findall(r'[ML]\s*[-0-9.]+,[-0-9.]+', d)) for d in paths]
    assert min(points) >= 1 and max(points) >= 2, f"chart '{title}': paths with {points} points"
assert "75.0%" in dom, "accuracy table missing"
size = os.path.getsize(sys.argv[2])
assert size > 20000, f"screenshot is {size} bytes: nothing rendered?"
print(f"report render e2e: ok ({len(charts)} charts, screenshot {size} bytes)")
PY
