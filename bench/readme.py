"""The README's figures, from the latest `make bench` result (bench/results/bench.json) only.

    python3 bench/readme.py --write   rewrite the README's generated blocks from the JSON
    python3 bench/readme.py --check   fail if a block differs from what the JSON gives, or if the
                                      README states a measured figure (a time, a ratio, "N of M")
                                      outside the generated blocks

A generated block sits between `<!-- bench:NAME -->` and `<!-- /bench:NAME -->`. `make bench` runs
--write; `make test` runs --check, so README and JSON cannot disagree.
"""
import json
import os
import re
import sys

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(HERE)
README = os.path.join(ROOT, "README.md")
JSON = os.path.join(HERE, "results", "bench.json")
METHOD = re.compile(r" \((fork|spawn|forkserver)\)$")
# A measured figure: a number with a unit of time or a ratio, or "N of M" (cycles, runs).
FIGURE = re.compile(r"\d[\d.,]*\s?(?:ns|µs|us|ms|×|x)\b(?![-\w])|\b\d[\d,]* of \d[\d,]*\b")
BLOCK = re.compile(r"(<!-- bench:(\w+) -->\n)(.*?)(<!-- /bench:\2 -->)", re.S)


def fmt(x):
    return "%.0f" % x if x >= 100 else "%.1f" % x if x >= 10 else "%.2f" % x


def target_text(t, unit):
    if not t:
        return ""
    kind, x = t
    return {"noise": "1.00 ± noise", "max": "≤ %g×" % x, "min_abs": "≥ %g%s" % (x, unit),
            "ratio": "≤ %g×" % x, "delta_ms": "≤ +%g ms" % x}[kind]


def grouped(workloads):
    """Rows of one metric over the start methods merged: (label, unit, target, [rows])."""
    out = []
    for w in workloads:
        label = METHOD.sub("", w["label"])
        if out and out[-1][0] == label:
            out[-1][3].append(w)
        else:
            out.append((label, w["unit"], w["target"], [w]))
    return out


def workload_table(doc):
    L = ["| workload | native | worst other configuration | target | met |", "|---|---|---|---|---|"]
    for label, unit, target, ws in grouped(doc["workloads"]):
        natives = [w["cells"]["native"]["median"] for w in ws if "native" in w["cells"]]
        if unit == "×":   # a speed-up: the value itself, worst configuration
            worst = min((c["median"], name) for w in ws for name, c in w["cells"].items())
            worst_txt = "%.1f× (%s)" % worst
        else:
            r = [(c["ratio"], name) for w in ws for name, c in w["cells"].items()
                 if name != "native" and "ratio" in c]
            worst_txt = "%.2f× (%s)" % max(r, key=lambda x: abs(x[0] - 1)) if r else "—"
        mets = {w["met"] for w in ws} - {None}
        met = "" if not mets else "yes" if mets == {True} else "**no**"
        L.append("| %s | %s%s%s | %s | %s | %s |" % (label, " / ".join(fmt(n) for n in natives),
                                                  "" if unit == "×" else " ", unit,
                                                  worst_txt, target_text(target, unit), met))
    return L


def startup_table(doc):
    L = ["| start-up | reference | with | extra | target | met |", "|---|---|---|---|---|---|"]
    for s in doc["startup"]:
        div = 1000 if s["unit"] == "ms" else 1
        ref, new = s["reference"]["median"] / div, s["with"]["median"] / div
        met = {None: "", True: "yes", False: "**no**"}[s["met"]]
        L.append("| %s | %s %s | %s %s | %+.2f %s (%.3f×) | %s | %s |" % (
            s["what"], fmt(ref), s["unit"], fmt(new), s["unit"], new - ref, s["unit"], new / ref,
            target_text(s["target"], s["unit"]), met))
    return L


def fork_stress_text(doc):
    fs = doc.get("fork_stress")
    if not fs:
        return ["(no fork-stress result in this run)"]
    n, p = fs["native"], fs["preload"]
    return ["`tests/fork_stress.sh` (a thread opening semaphores while the main thread forks), run by "
            "`make bench`: natively (%s) %d of %d cycles run, %d passed, %d hung%s; with the "
            "preload and no `/dev/shm`, %d of %d cycles run, %d passed, %d hung." % (
                doc["meta"].get("glibc", "glibc"), n["run"], n["cycles"], n["passed"], n["hung"],
                " (it gives up after %d consecutive failures)" % n["give_up"] if n["run"] < n["cycles"] else "",
                p["run"], p["cycles"], p["passed"], p["hung"])]


def misses(doc):
    rows = ["- %s: %s" % (w["label"], w["why"]) for w in doc["workloads"] if w["met"] is False]
    rows += ["- %s" % s["what"] for s in doc["startup"] if s["met"] is False]
    return rows or ["- none"]


def blocks(doc):
    m = doc["meta"]
    head = ["Latest run: %s, %s, kernel %s, %d CPUs, %d rounds, `/tmp` %s (`tests/sandbox.sh --ro`)." % (
        m["date"], m["python"], m["kernel"], m["cpus"], m["rounds"], m.get("tmp", "tmpfs"))]
    return {"table": head + [""] + workload_table(doc) + [""] + startup_table(doc),
            "misses": misses(doc), "fork_stress": fork_stress_text(doc)}


def render(text, doc):
    want = blocks(doc)

    def sub(mo):
        if mo.group(2) not in want:
            raise SystemExit("README: unknown generated block %r" % mo.group(2))
        return mo.group(1) + "\n".join(want[mo.group(2)]) + "\n" + mo.group(4)
    return BLOCK.sub(sub, text)


def stray_figures(text):
    """Measured figures outside the generated blocks: (line number, figure)."""
    out, inside = [], False
    for i, line in enumerate(text.splitlines(), 1):
        if re.match(r"<!-- bench:\w+ -->", line):
            inside = True
        elif re.match(r"<!-- /bench:\w+ -->", line):
            inside = False
        elif not inside:
            out += [(i, f) for f in FIGURE.findall(line)]
    return out


def main(argv):
    with open(JSON) as f:
        doc = json.load(f)
    with open(README) as f:
        text = f.read()
    new = render(text, doc)
    if "--write" in argv:
        with open(README, "w") as f:
            f.write(new)
        return 0
    bad = 0
    if new != text:
        print("README.md: a generated block differs from bench/results/bench.json: run "
              "`python3 bench/readme.py --write` (make bench does)")
        bad = 1
    for line, fig in stray_figures(text):
        print("README.md:%d: %r: a measured figure outside a generated block" % (line, fig))
        bad = 1
    found = {mo.group(2) for mo in BLOCK.finditer(text)}
    if found != set(blocks(doc)):
        print("README.md: generated blocks %s, want %s" % (sorted(found), sorted(blocks(doc))))
        bad = 1
    print("README figures: %s" % ("0 passed, 1 failed" if bad else "1 passed, 0 failed"))
    return bad


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
