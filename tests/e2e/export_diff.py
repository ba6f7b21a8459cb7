#!/usr/bin/env python3
"""export_diff.py: compare two /api/v1/export dumps (JSON lines) of the store.

    export_diff.py BEFORE AFTER [--until MS] [--lost FILE] [--expect-none]

AFTER must be well formed: no series twice, timestamps strictly increasing.
Every sample of BEFORE older than --until (ms; default: all) must be in AFTER
with the same value (values are compared as the strings the API returns, so
NaN and the stale marker compare exactly). Prints a summary line; --lost
writes the missing samples as JSON [[labels, ts], ...]; --expect-none makes
any loss (or nothing to check) an error. Exit 1 on a failed check.
"""
import argparse
import json
import sys


def load(path):
    out = {}
    for n, line in enumerate(open(path), 1):
        o = json.loads(line)
        key = json.dumps(o["metric"], sort_keys=True)
        if key in out:
            sys.exit("%s:%d: series %s appears twice" % (path, n, key))
        ts = o["timestamps"]
        if any(b <= a for a, b in zip(ts, ts[1:])):
            sys.exit("%s:%d: timestamps not strictly increasing in %s" % (path, n, key))
        out[key] = dict(zip(ts, o["values"]))
    return out


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("before")
    ap.add_argument("after")
    ap.add_argument("--until", type=int, default=None)
    ap.add_argument("--lost")
    ap.add_argument("--expect-none", action="store_true")
    a = ap.parse_args()
    before, after = load(a.before), load(a.after)
    lost, checked = [], 0
    for key, samples in before.items():
        got = after.get(key, {})
        for t, v in samples.items():
            if a.until is not None and t >= a.until:
                continue
            checked += 1
            if got.get(t) != v:
                lost.append([json.loads(key), t])
                if a.expect_none and len(lost) < 5:
                    print("lost or changed:", key, t, v, got.get(t))
    if a.lost:
        json.dump(lost, open(a.lost, "w"))
    print("# %d samples checked, %d lost" % (checked, len(lost)))
    if a.expect_none and (lost or not checked):
        sys.exit("%d of %d acknowledged samples lost" % (len(lost), checked))


main()
