#!/usr/bin/env python3
"""Turns `cargo bench -p sse-benches` output into the README's Markdown tables.

Usage: cargo bench -p sse-benches 2>&1 | python3 benches/scripts/table.py
   or: python3 benches/scripts/table.py run1.log run2.log ...
Reads criterion's text report (the middle value of `thrpt:` is the median),
prints decode throughput in GB/s (10^9 bytes/s) and encode rates in M
events/s, each with its ratio to the fastest peer and to the reference.

Given several runs, each benchmark's median is taken from the run where it
was highest. On a shared machine whose speed changes in phases of seconds,
one implementation's samples can all land in a slow phase while its
neighbour's land in a fast one; taking every implementation at its best
run, peers and references alike, keeps such a phase from deciding a ratio.
"""
import re
import sys

UNITS = {"B/s": 1, "KiB/s": 1024, "MiB/s": 1024**2, "GiB/s": 1024**3,
         "elem/s": 1, "Kelem/s": 1e3, "Melem/s": 1e6, "Gelem/s": 1e9}


def parse(text):
    results = {}
    name = None
    for line in text.splitlines():
        m = re.match(r"^((?:decode|encode)/\S+)", line)
        if m and "Benchmarking" not in line:
            name = m.group(1)
        m = re.search(r"thrpt:\s+\[\S+ \S+ (\S+) (\S+) \S+ \S+\]", line)
        if m and name:
            results[name] = float(m.group(1)) * UNITS[m.group(2)]
            name = None
    return results


def main():
    if len(sys.argv) > 1:
        r = {}
        for path in sys.argv[1:]:
            with open(path) as f:
                for k, v in parse(f.read()).items():
                    r[k] = max(r.get(k, 0), v)
    else:
        r = parse(sys.stdin.read())
    ours = ["sse-proto/ref", "sse-proto/feed_bytes", "sse-proto/feed"]
    peers = ["sse-stream", "sse-parse", "sseer", "eventsource-stream"]
    groups = sorted({k.rsplit("/", 1)[0] if not k.split("/")[-1].startswith(("feed", "ref")) else k.rsplit("/", 2)[0]
                     for k in r if k.startswith("decode/")},
                    key=lambda g: (g.split("/")[1], ["16KiB", "1KiB", "1B-prefix64KiB"].index(g.split("/")[2])))
    if groups:
        print("| corpus / chunks | " + " | ".join(ours + peers) + " | memchr-lines | best sse-proto ÷ fastest peer | ÷ memchr-lines |")
        print("|---" * (len(ours) + len(peers) + 4) + "|")
    for g in groups:
        row = [r.get(f"{g}/{i}") for i in ours + peers + ["memchr-lines"]]
        cells = ["—" if v is None else f"{v / 1e9:.3g}" for v in row]
        best = max(v for v in row[:len(ours)] if v is not None)
        peer = max(v for v in row[len(ours):len(ours) + len(peers)] if v is not None)
        limit = row[-1]
        print(f"| {g[len('decode/'):]} | " + " | ".join(cells) + f" | **{best / peer:.2f}×** | {best / limit:.2f} |")
    print()
    # Encode ids are `encode/<group>/<name>`, and a name may hold a slash.
    for g in sorted({"/".join(k.split("/", 2)[:2]) for k in r if k.startswith("encode/")}):
        items = {k.split("/", 2)[2]: v for k, v in r.items() if k.startswith(g + "/")}
        ref = items.get("direct-write") or items.get("serde_json+direct-write")
        print(f"| {g} | " + " | ".join(f"{n}: {v / 1e6:.1f} M/s" + (f" ({v / ref:.0%} of reference)" if ref else "")
                                        for n, v in sorted(items.items(), key=lambda kv: -kv[1])) + " |")


if __name__ == "__main__":
    main()
