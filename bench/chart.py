"""The chart of bench/compare.sh: requests per second and p99 per server and concurrency, as SVG.

    python3 bench/chart.py RESULTS.tsv OUT.svg

RESULTS.tsv holds one line per wrk run: round, server, op, connections, requests/s, p50 ms, p99 ms.
The medians over the rounds are drawn: two panels (requests/s, p99 latency), each a group of bars
per (operation, connections), one bar per server, on a logarithmic scale (the servers differ by
more than an order of magnitude). Only the standard library is used.
"""

import math
import statistics
import sys
from collections import defaultdict

SERVERS = [("openbao", "OpenBao 2.7.2 (raft, file audit)", "#8c8c8c"),
           ("sqlite", "Sigil on SQLite", "#2b6cb0"),
           ("postgres", "Sigil on PostgreSQL", "#38a169")]
GROUPS = [("read", 64), ("write", 64), ("read", 1), ("write", 1)]


def medians(path):
    runs = defaultdict(list)
    for line in open(path).read().splitlines():
        _, server, op, conns, rps, _p50, p99 = line.split("\t")
        runs[(server, op, int(conns))].append((float(rps), float(p99)))
    return {k: (statistics.median(r for r, _ in v), statistics.median(p for _, p in v))
            for k, v in runs.items()}


def panel(out, data, index, title, unit, x0, y0, w, h):
    values = [v[index] for v in data.values() if v[index] > 0]
    lo = 10 ** math.floor(math.log10(min(values)))
    hi = 10 ** math.ceil(math.log10(max(values)))
    def y(v):
        return y0 + h - h * (math.log10(max(v, lo)) - math.log10(lo)) / (math.log10(hi) - math.log10(lo))
    out.append(f'<text x="{x0}" y="{y0 - 12}" font-size="14" font-weight="bold">{title}</text>')
    decade = lo
    while decade <= hi:
        yy = y(decade)
        out.append(f'<line x1="{x0}" x2="{x0 + w}" y1="{yy:.1f}" y2="{yy:.1f}" stroke="#e2e2e2"/>')
        label = f"{decade:,.0f}" if decade >= 1 else f"{decade:g}"
        out.append(f'<text x="{x0 - 6}" y="{yy + 4:.1f}" font-size="11" text-anchor="end">{label}{unit}</text>')
        decade *= 10
    group_w = w / len(GROUPS)
    bar_w = group_w / (len(SERVERS) + 1)
    for g, (op, conns) in enumerate(GROUPS):
        gx = x0 + g * group_w + bar_w / 2
        for i, (server, _, color) in enumerate(SERVERS):
            v = data.get((server, op, conns))
            if not v:
                continue
            top = y(v[index])
            bx = gx + i * bar_w
            out.append(f'<rect x="{bx:.1f}" y="{top:.1f}" width="{bar_w - 3:.1f}" height="{y0 + h - top:.1f}" fill="{color}"/>')
            text = f"{v[index]:,.0f}" if v[index] >= 10 else f"{v[index]:.2f}"
            out.append(f'<text x="{bx + (bar_w - 3) / 2:.1f}" y="{top - 3:.1f}" font-size="9" text-anchor="middle">{text}</text>')
        out.append(f'<text x="{gx + len(SERVERS) * bar_w / 2:.1f}" y="{y0 + h + 16}" font-size="12" text-anchor="middle">'
                   f'{op}s, {conns} conn{"s" if conns > 1 else ""}</text>')
    out.append(f'<line x1="{x0}" x2="{x0 + w}" y1="{y0 + h}" y2="{y0 + h}" stroke="#444"/>')


def main():
    data = medians(sys.argv[1])
    width, height = 900, 700
    out = [f'<svg xmlns="http://www.w3.org/2000/svg" width="{width}" height="{height}" '
           f'viewBox="0 0 {width} {height}" font-family="sans-serif">',
           f'<rect width="{width}" height="{height}" fill="white"/>',
           '<text x="450" y="24" font-size="16" text-anchor="middle" font-weight="bold">'
           'KV v2 reads and writes on one 2-core machine, wrk on loopback (bench/compare.sh)</text>']
    panel(out, data, 0, "requests per second (higher is better, log scale)", "", 90, 70, 780, 230)
    panel(out, data, 1, "p99 latency (lower is better, log scale)", " ms", 90, 390, 780, 230)
    for i, (_, label, color) in enumerate(SERVERS):
        x = 110 + i * 260
        out.append(f'<rect x="{x}" y="{height - 30}" width="14" height="14" fill="{color}"/>')
        out.append(f'<text x="{x + 20}" y="{height - 19}" font-size="12">{label}</text>')
    out.append("</svg>")
    with open(sys.argv[2], "w") as f:
        f.write("\n".join(out) + "\n")


if __name__ == "__main__":
    main()
