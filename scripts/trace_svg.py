"""Renders a dagz Chrome-trace file (`--dagz-trace=PATH`) as an SVG picture: one band per worker,
the nesting of its main track (session > test > setup/call/teardown > OTel sub-spans) as rows,
colored by kind. For the README; open the JSON itself in https://ui.perfetto.dev to explore.

Usage: trace_svg.py TRACE.json OUT.svg [--seconds S]   (S: how much of the run to draw, from 0)
"""

from __future__ import annotations

import argparse
import html
import json
from collections import defaultdict
from pathlib import Path

COLORS = {
    "session": "#d9d9d9",
    "test": "#4e79a7",
    "setup": "#a0cbe8",
    "fixture": "#cfe2f3",
    "call": "#59a14f",
    "teardown": "#f1ce63",
}
OTEL_COLOR = "#e15759"
ROW_H, BAND_GAP, LEFT, WIDTH = 14, 18, 70, 1100


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("trace", type=Path)
    ap.add_argument("out", type=Path)
    ap.add_argument("--seconds", type=float, default=6.0)
    args = ap.parse_args()
    events = json.loads(args.trace.read_text())["traceEvents"]
    names = {e["pid"]: e["args"]["name"] for e in events if e.get("name") == "process_name"}
    main_tid: dict[int, int] = {}
    for e in events:
        if e.get("ph") == "X" and e.get("cat") == "session":
            main_tid.setdefault(e["pid"], e["tid"])
    horizon = args.seconds * 1e6
    bands: dict[int, list[dict]] = defaultdict(list)
    for e in events:
        if e.get("ph") != "X" or e["tid"] != main_tid.get(e["pid"]) or e["ts"] > horizon:
            continue
        bands[e["pid"]].append(e)
    scale = (WIDTH - LEFT - 10) / horizon
    parts: list[str] = []
    y = 24
    for pid in sorted(bands):
        spans = sorted(bands[pid], key=lambda e: (e["ts"], -e["dur"]))
        stack: list[float] = []
        rows = 0
        placed = []
        for e in spans:
            while stack and stack[-1] <= e["ts"]:
                stack.pop()
            depth = len(stack)
            stack.append(e["ts"] + e["dur"])
            rows = max(rows, depth + 1)
            placed.append((depth, e))
        label = html.escape(names.get(pid, str(pid)))
        parts.append(f'<text x="4" y="{y + 11}" font-size="11">{label}</text>')
        for depth, e in placed:
            x = LEFT + e["ts"] * scale
            w = max(min(e["dur"], horizon - e["ts"]) * scale, 0.6)
            color = COLORS.get(e.get("cat", ""), OTEL_COLOR)
            title = html.escape(f"{e['name']} ({e['dur'] / 1000:.1f} ms)")
            parts.append(
                f'<rect x="{x:.1f}" y="{y + depth * ROW_H}" width="{w:.1f}" height="{ROW_H - 2}" '
                f'fill="{color}"><title>{title}</title></rect>'
            )
        y += rows * ROW_H + BAND_GAP
    legend = [*COLORS.items(), ("OTel sub-span", OTEL_COLOR)]
    lx = LEFT
    for label, color in legend:
        parts.append(f'<rect x="{lx}" y="4" width="10" height="10" fill="{color}"/>')
        parts.append(f'<text x="{lx + 14}" y="13" font-size="11">{label}</text>')
        lx += 14 + 8 * len(label) + 16
    axis = (
        f'<text x="{WIDTH - 160}" y="{y + 4}" font-size="11">'
        f"first {args.seconds:g} s of the run</text>"
    )
    svg = (
        f'<svg xmlns="http://www.w3.org/2000/svg" width="{WIDTH}" height="{y + 12}" '
        f'font-family="sans-serif"><rect width="100%" height="100%" fill="white"/>'
        + "".join(parts)
        + axis
        + "</svg>\n"
    )
    args.out.write_text(svg)


if __name__ == "__main__":
    main()
