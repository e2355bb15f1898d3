"""Time a cached load of a data set (the data layer's speed target: well under a second).

Usage:
    python benchmarks/data_load.py [SPEC ...] [--repeats N]

Each load runs in a fresh Python process so that nothing is warm in memory but the OS page cache;
the first run fills genood's cache (fetching the data if needed) and is not timed.
"""

from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys

PROBE = """
import time, json, sys
start = time.perf_counter()
import genood.data
imported = time.perf_counter()
data = genood.data.load(sys.argv[1], progress=False)
loaded = time.perf_counter()
print(json.dumps({"import_s": imported - start, "load_s": loaded - imported, "n": len(data.images)}))
"""


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("specs", nargs="*", default=["fashion-mnist:train", "mnist-10k"])
    parser.add_argument("--repeats", type=int, default=5)
    args = parser.parse_args()
    for spec in args.specs:
        subprocess.run([sys.executable, "-c", PROBE, spec], check=True, capture_output=True)
        runs = [
            json.loads(
                subprocess.run(
                    [sys.executable, "-c", PROBE, spec], check=True, capture_output=True, text=True
                ).stdout
            )
            for _ in range(args.repeats)
        ]
        load = statistics.median(r["load_s"] for r in runs)
        imp = statistics.median(r["import_s"] for r in runs)
        print(
            f"{spec:24s} n={runs[0]['n']:6d}  cached load {load:.3f} s  (import genood.data {imp:.3f} s)"
        )


if __name__ == "__main__":
    main()
