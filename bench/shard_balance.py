"""Shard balance (issue 16): with recorded durations, the slowest of 3 shards' test time is
<= 1.15x the mean shard time on the example suite, against a split by test count.

1. The example suite (examples/shop, on databases ``dz_bench_<hex>_shop`` /
   ``dz_bench_<hex>_audit``, dropped at exit) runs whole with ``--dagz-workers 2
   --dagz-store-durations``: a real `.test_durations` file (pytest-split's format).
2. Computed from that file: the per-shard test time (sum of the recorded setup + call + teardown
   seconds of its tests) for dagz's split (what `pytest --collect-only --dagz-shard K/3` keeps)
   and for a split by test count (equal numbers of tests, contiguous in collection order).
3. Measured (unless ``--no-run``): the 3 shards of each split run one after the other with
   ``--dagz-workers 2``, each storing what it measured; the per-shard test time is the sum of the
   durations that shard's own run recorded (a fresh measurement, not the file that made the split).

Printed raw: every shard's test count and seconds, max / mean per split, the verdict on the
target (<= 1.15) for the computed figure (the target) and the measured one.

    .venv/bin/python bench/shard_balance.py [--shards 3] [--workers 2] [--no-run]
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "bench"))
sys.path.insert(0, str(ROOT / "shim"))

import _names  # noqa: E402
from dagz.shard import split_by_count  # noqa: E402

SUITE = ROOT / "examples" / "shop"
PY = ROOT / ".venv" / "bin" / "python"
TARGET = 1.15


def _env() -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("PYTEST_", "DAGZ_"))}
    env["SHOP_PG_DATABASE"] = _names.name("shop")
    env["SHOP_MYSQL_DATABASE"] = _names.name("audit")
    return env


def _pytest(*args: str, log: Path) -> float:
    argv = [str(PY), "-m", "pytest", "-q", "-p", "no:cacheprovider", *args]
    start = time.monotonic()
    with log.open("w") as fh:
        proc = subprocess.run(
            argv, check=False, cwd=SUITE, env=_env(), stdout=fh, stderr=subprocess.STDOUT
        )
    rc = proc.returncode
    seconds = time.monotonic() - start
    if rc != 0:
        tail = log.read_text().splitlines()[-30:]
        sys.exit(
            f"shard_balance: the suite failed (rc {rc}): {' '.join(args)[:200]}\n" + "\n".join(tail)
        )
    return seconds


def _collection(tmp: Path, *args: str) -> list[str]:
    """The node ids pytest collects (with `--dagz-shard K/N`: those that shard keeps)."""
    log = tmp / "collect.log"
    _pytest("--collect-only", *args, log=log)
    lines = log.read_text().split("\n\n", 1)[0].splitlines()  # node ids, then a blank line
    return [line for line in lines if "::" in line]


def _grew(now: dict[str, float], before: dict[str, float], top: int = 3) -> str:
    """The tests whose time changed most from the recorded file (what the split could not know)."""
    diffs = sorted(now, key=lambda t: -(now[t] - before.get(t, 0.0)))[:top]
    return ", ".join(f"{t.split('::')[-1]} {before.get(t, 0):.2f}->{now[t]:.2f}s" for t in diffs)


def _ratio(times: list[float]) -> float:
    return max(times) / (sum(times) / len(times))


def _show(label: str, groups: list[list[str]], durations: dict[str, float]) -> float:
    times = [sum(durations.get(n, 0.0) for n in g) for g in groups]
    cells = ", ".join(
        f"shard {k}: {len(g)} tests {t:.2f}s"
        for k, (g, t) in enumerate(zip(groups, times, strict=True), 1)
    )
    ratio = _ratio(times)
    mean = sum(times) / len(times)
    print(f"  {label:<16} {cells}; max {max(times):.2f}s / mean {mean:.2f}s = {ratio:.3f}")
    return ratio


def _measure(
    tmp: Path,
    file: Path,
    durations: dict[str, float],
    splits: dict[str, list[list[str]]],
    n: int,
    w: str,
) -> float:
    """Runs every shard of both splits; returns dagz's measured slowest/mean."""
    ratios = {}
    for label, groups in splits.items():
        fresh: dict[str, float] = {}
        for k, group in enumerate(groups, start=1):
            out = tmp / f"{label[:4]}{k}.json"
            ours = label == "dagz durations"
            shard_args = (
                [f"--dagz-shard={k}/{n}", f"--dagz-durations={file}"]
                if ours
                else ["--dagz-durations", str(out), *group]
            )
            log = tmp / f"{label[:4]}{k}.log"
            wall = _pytest("--dagz-workers", w, "--dagz-store-durations", *shard_args, log=log)
            stored = file.with_name(f"{file.name}.shard-{k}-of-{n}") if ours else out
            mine = json.loads(stored.read_text())
            if set(mine) != set(group):
                sys.exit(f"shard_balance: {label} shard {k}: {len(mine)}/{len(group)} ran")
            fresh.update(mine)
            took = sum(mine.values())
            print(
                f"    {label} {k}: {len(mine)} tests, {took:.2f}s test time, {wall:.1f}s "
                f"wall, load {os.getloadavg()[0]:.1f}; grew most: {_grew(mine, durations)}"
            )
        ratios[label] = _show(label, groups, fresh)
    return ratios["dagz durations"]


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--shards", type=int, default=3)
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--no-run", action="store_true", help="only the computed figures")
    parser.add_argument("--quick", action="store_true", help="= --no-run (proves it runs)")
    args = parser.parse_args()
    args.no_run = args.no_run or args.quick
    if not SUITE.is_dir():
        print(f"shard_balance: {SUITE} is missing: nothing measured")
        return 0
    _names.cleanup_at_exit()
    n, w = args.shards, str(args.workers)
    with tempfile.TemporaryDirectory(prefix="dz_shard_balance_") as tmpdir:
        tmp = Path(tmpdir)
        file = tmp / ".test_durations"
        order = _collection(tmp)
        suite = SUITE.relative_to(ROOT)
        print(f"Shard balance on {suite}: {len(order)} tests, {n} shards x {w} workers")
        seconds = _pytest(
            "--dagz-workers",
            w,
            "--dagz-store-durations",
            f"--dagz-durations={file}",
            log=tmp / "record.log",
        )
        durations = json.loads(file.read_text())
        total = sum(durations.values())
        print(f"recorded: {len(durations)} tests, {total:.2f}s test time, {seconds:.1f}s run")
        by_count = split_by_count(order, n)
        # what --dagz-shard K/N keeps, asked from the plugin itself
        groups_time = [
            _collection(tmp, f"--dagz-shard={k}/{n}", f"--dagz-durations={file}")
            for k in range(1, n + 1)
        ]
        kept = [t for g in groups_time for t in g]
        if sorted(kept) != sorted(order):
            sys.exit(f"shard_balance: the shards keep {len(kept)} tests of {len(order)}")
        groups_count = [[t for t in order if by_count[t] == k] for k in range(1, n + 1)]
        print("computed from the recorded file (target: dagz <= 1.15):")
        computed = _show("dagz durations", groups_time, durations)
        _show("by test count", groups_count, durations)
        measured = None
        if not args.no_run:
            print("measured: each shard run alone, its test time from its own run's durations")
            groups = {"dagz durations": groups_time, "by test count": groups_count}
            measured = _measure(tmp, file, durations, groups, n, w)
    verdict = "met" if computed <= TARGET else "MISSED"
    line = (
        f"shard_balance: slowest/mean with recorded durations {computed:.3f} "
        f"(computed, target <= {TARGET}: {verdict})"
    )
    if measured is not None:
        line += f"; {measured:.3f} measured"
    print(line)
    return 0


if __name__ == "__main__":
    sys.exit(main())
