#!/usr/bin/env python3
"""An independent witness of the disk: writes 4 KiB and fdatasyncs it every 10 ms in DIR, and
tells how long each sync took.

    python3 bench/fsync_probe.py DIR --log FILE          # each sync's ms appended to FILE (soak.sh)
    python3 bench/fsync_probe.py DIR --minutes 5          # alone: per 30 s, syncs over 100 ms, max
    python3 bench/fsync_probe.py DIR --minutes 5 --load   # the same beside a WAL-like write load

    python3 bench/fsync_probe.py DIR --minutes 5 --grow 40   # beside 40 MB/s of new data

`--load` is a second writer shaped like the SQLite server's WAL under the soak's mix, without the
server: 4 KiB pages written in turn over a 4 MiB file (rewritten from its start) with an
fdatasync after every 10 pages (a group commit), as fast as the disk allows. `--grow MBPS` is
one shaped like its checkpoints into a growing database: MBPS megabytes a second of new data
appended to a file, synced every 100 ms (the files are removed at the end). When the probe stalls
beside one of them as it does beside the server, the stalls come with that kind of write load
on this disk, whoever writes, not from the server.
"""

import argparse
import os
import threading
import time


def probe(path, sink, stop):
    fd = os.open(path, os.O_WRONLY | os.O_CREAT, 0o600)
    block = b"p" * 4096
    while not stop.is_set():
        start = time.monotonic()
        os.pwrite(fd, block, 0)
        os.fdatasync(fd)
        sink((time.monotonic() - start) * 1000)
        time.sleep(0.01)


def load(path, stop, written):
    fd = os.open(path, os.O_WRONLY | os.O_CREAT, 0o600)
    page = os.urandom(4096)
    pages = (4 << 20) // 4096
    n = 0
    while not stop.is_set():
        for _ in range(10):
            os.pwrite(fd, page, (n % pages) * 4096)
            n += 1
        os.fdatasync(fd)
        written[0] = n * 4096


def grow(path, rate, stop, written):
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o600)
    chunk = os.urandom(1 << 16)
    per_tick = max(1, int(rate * 1e6 * 0.1) // len(chunk))
    n = 0
    while not stop.is_set():
        start = time.monotonic()
        for _ in range(per_tick):
            os.write(fd, chunk)
            n += 1
        os.fsync(fd)
        written[0] = n * len(chunk)
        time.sleep(max(0.0, 0.1 - (time.monotonic() - start)))


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("dir")
    ap.add_argument("--log")
    ap.add_argument("--minutes", type=float, default=5)
    ap.add_argument("--slice", type=float, default=30)
    ap.add_argument("--load", action="store_true")
    ap.add_argument("--grow", type=float, metavar="MBPS")
    a = ap.parse_args()
    stop = threading.Event()
    target = os.path.join(a.dir, "fsync-probe")
    if a.log:
        with open(a.log, "a", buffering=1) as log:
            probe(target, lambda ms: log.write("%.3f\n" % ms), stop)
        return
    times = []
    written = [0]
    threading.Thread(target=probe, args=(target, times.append, stop), daemon=True).start()
    if a.load:
        wal = os.path.join(a.dir, "fsync-probe-load")
        threading.Thread(target=load, args=(wal, stop, written), daemon=True).start()
    if a.grow:
        grown = os.path.join(a.dir, "fsync-probe-grow")
        threading.Thread(target=grow, args=(grown, a.grow, stop, written), daemon=True).start()
    print("| slice | probe's syncs | over 100 ms | max ms | load MB/s |")
    print("|---|---|---|---|---|")
    seen, before = 0, 0
    for i in range(1, int(a.minutes * 60 / a.slice) + 1):
        time.sleep(a.slice)
        now, w = times[seen:], written[0]
        seen += len(now)
        print("| %d | %d | %d | %.0f | %.1f |" % (i, len(now), sum(t > 100 for t in now),
                                                 max(now, default=0), (w - before) / a.slice / 1e6))
        before = w
    stop.set()
    time.sleep(0.5)
    for name in ["fsync-probe", "fsync-probe-load", "fsync-probe-grow"]:
        if os.path.exists(os.path.join(a.dir, name)):
            os.remove(os.path.join(a.dir, name))


if __name__ == "__main__":
    main()
