#!/usr/bin/env python3
"""Prints criterion results as a table with each row's ratio to its group's `bare` row.

Usage: scripts/bench-table.py [TARGET_DIR]   (default: $CARGO_TARGET_DIR or ./target)
"""
import json
import os
import sys
from pathlib import Path

target = Path(sys.argv[1] if len(sys.argv) > 1 else os.environ.get("CARGO_TARGET_DIR", "target"))
root = target / "criterion"
if not root.is_dir():
    sys.exit(f"no criterion results under {root}; run `cargo bench` first")

def fmt(ns):
    for unit, scale in (("s", 1e9), ("ms", 1e6), ("us", 1e3)):
        if ns >= scale:
            return f"{ns / scale:.2f} {unit}"
    return f"{ns:.0f} ns"

print(f"| {'group':<24} | {'row':<18} | {'median':>10} | {'vs bare':>8} |")
print(f"|{'-' * 26}|{'-' * 20}|{'-' * 12}|{'-' * 10}|")
for group in sorted(p for p in root.iterdir() if p.is_dir() and p.name != "report"):
    rows = {}
    for row in sorted(p for p in group.iterdir() if p.is_dir() and p.name != "report"):
        estimates = row / "new" / "estimates.json"
        if estimates.is_file():
            rows[row.name] = json.loads(estimates.read_text())["median"]["point_estimate"]
    bare = rows.get("bare")
    for name, ns in rows.items():
        ratio = f"{ns / bare:.3f}" if bare else "-"
        print(f"| {group.name:<24} | {name:<18} | {fmt(ns):>10} | {ratio:>8} |")
