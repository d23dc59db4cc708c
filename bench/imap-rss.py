#!/usr/bin/env python3
"""Memory of a server and all its child processes, in KiB: `rss` (sum of VmRSS, counts shared
pages once per process) and `pss` (sum of proportional set sizes, shared pages split). Used by
bench/imap.sh; with --watch it samples every second (or every INTERVAL seconds, a 4th argument)
until the process exits and keeps the peak in a file. `hwm_kib` sums each process's own peak RSS
(VmHWM, kept by the kernel, so no sample can miss it); `anon_kib` and `file_kib` split RSS into
anonymous memory (heap, stacks) and mapped file pages (page cache the kernel can reclaim)."""
import json
import os
import sys
import time


def children():
    tree = {}
    for pid in filter(str.isdigit, os.listdir("/proc")):
        try:
            with open(f"/proc/{pid}/stat") as f:
                ppid = int(f.read().rsplit(")", 1)[1].split()[1])
        except OSError:
            continue
        tree.setdefault(ppid, []).append(int(pid))
    return tree


def family(root):
    tree, out, todo = children(), [], [root]
    while todo:
        p = todo.pop()
        out.append(p)
        todo.extend(tree.get(p, []))
    return out


def field(path, name):
    try:
        with open(path) as f:
            for line in f:
                if line.startswith(name + ":"):
                    return int(line.split()[1])
    except OSError:
        pass
    return 0


def sample(root):
    pids = family(root)
    return {
        "rss_kib": sum(field(f"/proc/{p}/status", "VmRSS") for p in pids),
        "pss_kib": sum(field(f"/proc/{p}/smaps_rollup", "Pss") for p in pids),
        "hwm_kib": sum(field(f"/proc/{p}/status", "VmHWM") for p in pids),
        "anon_kib": sum(field(f"/proc/{p}/status", "RssAnon") for p in pids),
        "file_kib": sum(field(f"/proc/{p}/status", "RssFile") for p in pids),
        "processes": len(pids),
    }


if __name__ == "__main__":
    root = int(sys.argv[1])
    if len(sys.argv) > 2 and sys.argv[2] == "--watch":
        peak = {"rss_kib": 0, "pss_kib": 0, "hwm_kib": 0, "anon_kib": 0, "file_kib": 0,
                "processes": 0}
        out = sys.argv[3]
        interval = float(sys.argv[4]) if len(sys.argv) > 4 else 1.0
        while os.path.exists(f"/proc/{root}"):
            s = sample(root)
            for k in peak:
                peak[k] = max(peak[k], s[k])
            with open(out, "w") as f:
                json.dump(peak, f)
            time.sleep(interval)
    else:
        print(json.dumps(sample(root)))
