#!/usr/bin/env python3
"""run.py: run the incident drills (tests/drills/README.md).

Usage: tests/drills/run.py [--full] [--sitrep build/sitrep] [--netdata]
                          [--json OUT.json] [--report docs/DRILLS.md] [--keep] [DRILL...]

Short form (the default, what `make test` runs through ctest, one drill per
test) keeps every phase as short as the mechanism allows; --full runs the
lengths the incidents had (`make drills`, with Netdata side by side and the
table written to docs/DRILLS.md). Exit status 0 when every drill met its
expectations; otherwise each failure is printed with what sitrep saw. A
drill the host could not give a fair run (harness.Inconclusive: its CPU
taken by the hypervisor, or saturated before the onset) is run once more,
then skipped with the figures; exit status 77 (ctest's skip) when every
drill asked for was skipped.
"""
import argparse
import importlib
import json
import os
import sys
import time
import traceback

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from harness import Drill, DrillFailed, Inconclusive, Netdata, Skip  # noqa: E402

ORDER = ["memory", "dentry", "backlog", "cpu", "flood", "down", "slow", "baseline"]


def fmt_delay(x):
    return "-" if x is None else "%.0f s" % x


def verdict(results):
    """The issue's side-by-side target, per drill: sitrep's first expected
    alert against Netdata's first alarm, and a one-line tally."""
    out, detected, earlier, netdata_hits, expecting = [], 0, 0, 0, 0
    for r in results:
        nd = r.get("netdata")
        if nd is None:
            continue
        # Detection rows: an alert with a deadline, not a recovery (down's
        # resolution after the fix); firing before the onset is not one.
        rows = [row for row in r.get("rows", [])
                if row.get("deadline_s") is not None and not row.get("recovery")]
        fired = [row["delay_s"] for row in rows
                 if row["delay_s"] is not None and row["delay_s"] >= 0]
        ours = min(fired) if fired else None
        theirs = nd["first"]["delay_s"] if nd["first"] else None
        expecting += bool(rows)
        detected += bool(rows) and ours is not None
        if theirs is not None:
            netdata_hits += 1
            earlier += ours is not None and ours < theirs
        if not rows:
            what = "no alert expected; sitrep raised %s, Netdata %s" % (
                ", ".join(r.get("other_alerts", [])) or "none",
                nd["first"]["alarm"] if nd["first"] else "none")
        elif ours is None:
            what = "sitrep did NOT detect it in time; Netdata %s" % (
                "raised nothing" if theirs is None else "after %s" % fmt_delay(theirs))
        elif theirs is None:
            what = "sitrep after %s; Netdata raised nothing" % fmt_delay(ours)
        else:
            what = "sitrep after %s, Netdata after %s (%s): %s" % (
                fmt_delay(ours), fmt_delay(theirs), nd["first"]["alarm"],
                "sitrep first" if ours < theirs else "NETDATA FIRST")
        out.append("- %s: %s" % (r["drill"], what))
    if not out:
        return ["Netdata was not run (--netdata)."]
    return out + ["", "sitrep detected %d of %d drills; Netdata detected %d, and sitrep was first"
                  " on %d of those." % (detected, expecting, netdata_hits, earlier)]


def report(results, path, argv):
    lines = ["# Incident drills", "",
             "Produced by `%s` on %s (a 2-core, 24 GiB Debian 12 machine) in %s form."
             " Each drill reproduces an incident's mechanism for real; the table gives"
             " the delay from the onset to each expected alert firing in sitrep, to its"
             " notification at the webhook sink, and to Netdata's first alarm (stock health"
             " configuration, same run). tests/drills/README.md describes the drills."
             " Netdata alarms about the machine itself rather than any drill (its clock sync"
             " state: this container runs no NTP) are left out."
             % (" ".join(argv), time.strftime("%Y-%m-%d"),
                "short" if results and results[0].get("short") else "full"), "",
             "| drill | expected alert | within | sitrep fired | notified | cause named |"
             " Netdata first alarm | result |",
             "|---|---|---:|---:|---:|---|---|---|"]
    for r in results:
        if "rows" not in r:
            lines.append("| %s | - | - | - | - | - | - | %s |" % (r["drill"], r.get("error", "")))
            continue
        nd = r.get("netdata")
        ndtext = "not run" if nd is None else (
            "none" if not nd["first"] else "%s after %s" % (nd["first"]["alarm"],
                                                         fmt_delay(nd["first"]["delay_s"])))
        rows = r["rows"] or [{"alert": "(none expected)", "deadline_s": None, "delay_s": None,
                              "notified_delay_s": None, "cause_named": None,
                              "ok": not r["other_alerts"]}]
        for row in rows:
            lines.append("| %s | %s | %s | %s | %s | %s | %s | %s |" % (
                r["drill"], row["alert"],
                "-" if row["deadline_s"] is None else "%d s" % row["deadline_s"],
                fmt_delay(row["delay_s"]), fmt_delay(row["notified_delay_s"]),
                {None: "-", True: "yes", False: "no"}[row["cause_named"]], ndtext,
                "pass" if row["ok"] and r.get("passed", True) else "FAIL"))
    lines += ["", "## Against Netdata", ""] + verdict(results)
    lines += ["", "## What each drill saw", ""]
    for r in results:
        for n in r.get("notes", []):
            lines.append("- %s: %s" % (r["drill"], n))
    with open(path, "w") as f:
        f.write("\n".join(lines) + "\n")


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("drills", nargs="*")
    ap.add_argument("--full", action="store_true")
    ap.add_argument("--sitrep")
    ap.add_argument("--netdata", action="store_true", help="run Netdata side by side")
    ap.add_argument("--json")
    ap.add_argument("--report")
    ap.add_argument("--keep", action="store_true", help="keep each drill's temp dir")
    a = ap.parse_args()
    names = a.drills or ORDER
    results, failed, skipped = [], [], []
    for name in names:
        mod = importlib.import_module(name)
        print("== drill %s: %s (%s form)" % (name, mod.TITLE, "full" if a.full else "short"),
              flush=True)
        t0 = time.time()
        for attempt in (1, 2):
            r, why = run_one(name, mod, a)
            if not r.get("inconclusive") or attempt == 2:
                break
            print("INCONCLUSIVE drill %s: %s; trying once more" % (name, r["error"]), flush=True)
        if why:
            failed.append((name, why))
        if "skipped" in r.get("error", ""):
            skipped.append(name)
        r["seconds"] = round(time.time() - t0)
        results.append(r)
        print(json.dumps(r, indent=1, default=str), flush=True)
    if a.json:
        with open(a.json, "w") as f:
            json.dump(results, f, indent=1, default=str)
    if a.report:
        report(results, a.report, sys.argv)
    for name, why in failed:
        print("FAIL drill %s: %s" % (name, why), file=sys.stderr)
    if failed:
        return 1
    return 77 if skipped and len(skipped) == len(names) else 0


def run_one(name, mod, a):
    """One run of a drill: (record, why it failed or None)."""
    with Drill(name, short=not a.full, sitrep_bin=a.sitrep, keep=a.keep) as d:
        why = None
        try:
            nd = Netdata(d) if a.netdata else None
            r = mod.run(d, nd)
            r["passed"] = all(row["ok"] for row in r["rows"]) and (
                not r.get("forbid_others") or not r["other_alerts"])
            if not r["passed"]:
                why = "an expectation failed: %s" % json.dumps(r["rows"])
        except Skip as e:
            r = {"drill": name, "error": "skipped: %s" % e,
                 "inconclusive": isinstance(e, Inconclusive)}
            print("SKIP drill %s: %s" % (name, e), flush=True)
        except DrillFailed as e:
            r = e.args[1] if len(e.args) > 1 else {"drill": name}
            r["passed"] = False
            r.setdefault("error", str(e.args[0]))
            why = str(e.args[0])
            print("sitrep log tail:\n" + d.tail("sitrep"), file=sys.stderr)
        except Exception:
            r = {"drill": name, "passed": False, "error": traceback.format_exc()}
            why = traceback.format_exc()
        for line in d.log:
            print("  " + line)
    return r, why


if __name__ == "__main__":
    sys.exit(main())
