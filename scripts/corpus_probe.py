#!/usr/bin/env python3
"""Greedy answers of a model on corpus rows (corpus_val.jsonl): how many have the gold query's
shape (literals masked), all its literals, or the exact query. A diagnostic for pretraining:
it tells whether a base reads the question (shape) and copies from it (literals).

usage: scripts/corpus_probe.py --model DIR --rows RUN/corpus/corpus_val.jsonl [--n 40] [--lathe build/cli/lathe]
"""
import argparse
import json
import re
import subprocess

LITERAL = re.compile(r"'[^']*'|\b\d+(?:\.\d+)?\b")


def answer(text):
    if "<answer>" not in text or "</answer>" not in text:
        return ""
    return text.split("<answer>", 1)[1].split("</answer>", 1)[0].strip()


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", required=True)
    parser.add_argument("--rows", required=True)
    parser.add_argument("--n", type=int, default=40)
    parser.add_argument("--lathe", default="build/cli/lathe")
    args = parser.parse_args()
    with open(args.rows, encoding="utf-8") as f:
        rows = [json.loads(line) for line in f if line.strip()][: args.n]
    exact = literals = shape = 0
    for row in rows:
        system, user, assistant = (m["content"] for m in row["messages"][:3])
        gold = answer(assistant)
        out = subprocess.run([args.lathe, "generate", "--model", args.model, "--chat", "--system", system,
                              "--prompt", user, "--max-new-tokens", "160", "--threads", "1"],
                             capture_output=True, text=True, check=True).stdout
        pred = answer(out)
        exact += pred == gold
        shape += LITERAL.sub("L", pred) == LITERAL.sub("L", gold)
        literals += sorted(LITERAL.findall(pred)) == sorted(LITERAL.findall(gold))
    print(f"{args.model}: {len(rows)} rows, shape {shape}, literals {literals}, exact {exact}")


if __name__ == "__main__":
    main()
