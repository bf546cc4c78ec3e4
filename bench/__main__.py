"""``make bench``: run every ``bench/bench_*.py`` and print one line per figure.

Each module has ``run() -> list[Figure]`` and runs in its own process (each sets Django up on
its own fresh data). The last line says how many targets were met.
"""

from __future__ import annotations

import json
import subprocess
import sys

from bench.harness import ROOT, Figure


def _modules(selected: list[str]) -> list[str]:
    names = sorted(path.stem for path in (ROOT / "bench").glob("bench_*.py"))
    return [name for name in names if not selected or any(s in name for s in selected)]


def _run_one(module: str) -> list[Figure]:
    code = (
        "import json, importlib; "
        f"figures = importlib.import_module('bench.{module}').run(); "
        "print('@@FIGURES@@' + json.dumps([f.__dict__ for f in figures]))"
    )
    result = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, check=False)
    for line in result.stdout.splitlines():
        if line.startswith("@@FIGURES@@"):
            return [Figure(**item) for item in json.loads(line.removeprefix("@@FIGURES@@"))]
    sys.stderr.write(result.stdout[-4000:] + result.stderr[-4000:])
    return [Figure(name=f"{module} (failed to run)", value=float("nan"), unit="", comparison=">=", target=1)]


def main() -> int:
    figures: list[Figure] = []
    for module in _modules(sys.argv[1:]):
        for figure in _run_one(module):
            print(figure.line(), flush=True)
            figures.append(figure)
    met = sum(figure.met for figure in figures)
    print(f"bench: {met} of {len(figures)} targets met")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
