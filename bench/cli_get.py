#!/usr/bin/env python3
"""Times `sigil secrets get X` as a whole process against baselines measured in the same run.

Usage: cargo build --release --bin sigil && python3 bench/cli_get.py [--runs N] [--bin PATH]

Baselines: `sigil --version` (the same binary starting and exiting: process start, dynamic
loading, argument parsing) and `/bin/true` (the cost of spawning any process from here).
Prints medians and p90 in milliseconds and the ratio of `get` to each baseline. The config file
holds 100 secrets, as a small team's would.
"""
import argparse
import os
import statistics
import subprocess
import tempfile
import time


def timed(argv, env, runs):
    samples = []
    for _ in range(runs):
        t0 = time.perf_counter_ns()
        r = subprocess.run(argv, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
        samples.append((time.perf_counter_ns() - t0) / 1e6)
        if r.returncode != 0:
            raise SystemExit(f"{argv} failed: {r.stderr.decode()}")
    samples.sort()
    return statistics.median(samples), samples[int(len(samples) * 0.9)]


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--runs", type=int, default=300)
    ap.add_argument("--bin", default=os.path.join(os.path.dirname(__file__), "..", "target", "release", "sigil"))
    a = ap.parse_args()
    home = tempfile.mkdtemp(prefix="sigil-bench-")
    os.makedirs(os.path.join(home, ".sigil"))
    with open(os.path.join(home, ".sigil", "config.toml"), "w") as f:
        f.write("# bench config\n[context.secrets]\n")
        for i in range(100):
            f.write(f'SECRET_{i} = "value-{i}-{"x" * 24}"\n')
    env = {"PATH": os.environ.get("PATH", ""), "HOME": home}
    cases = [
        ("sigil secrets get SECRET_42", [a.bin, "secrets", "get", "SECRET_42"]),
        ("baseline: sigil --version", [a.bin, "--version"]),
        ("baseline: /bin/true", ["/bin/true"]),
    ]
    for _, argv in cases:  # warm the page cache
        timed(argv, env, 10)
    results = {name: timed(argv, env, a.runs) for name, argv in cases}
    for name, (med, p90) in results.items():
        print(f"{name:32} median {med:6.2f} ms   p90 {p90:6.2f} ms")
    get = results[cases[0][0]][0]
    for name, _ in cases[1:]:
        print(f"ratio get / {name.split(': ')[1]:16} {get / results[name][0]:.2f}")


if __name__ == "__main__":
    main()
