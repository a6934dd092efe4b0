"""Tables (markdown), JSON and chart for bench/run.py.

Every workload number is one value per round (a fresh process per configuration and round);
a cell shows the median over rounds, the interquartile range of the rounds [q1-q3] and the ratio
of medians to native. Start-up numbers are single runs (thousands for /bin/true), interleaved.
"""
import json
import os
import statistics

LABELS = {"native": "native /dev/shm", "preload": "LD_PRELOAD", "patch": "activation: patch",
          "act-preload": "activation: preload", "context": "get_context()"}
METHODS = ("fork", "spawn", "forkserver")

# (metric, label, unit, target). Targets: ("noise", tol): ratio 1.00 within max(tol, native's
# relative IQR); ("max", r): ratio <= r; ("min_abs", x): the value itself >= x, native included.
ROWS = [
    ("lock_ns/{m}", "Lock acquire+release, uncontended", "ns", ("noise", 0.05)),
    ("lock2_ns/{m}", "Lock acquire+release, 2 processes contending", "ns", ("noise", 0.05)),
    ("semlock_us/{m}", "SemLock create+destroy (ctx.Lock())", "µs", ("max", 1.3)),
    ("sem_open_us", "C: sem_open+sem_close+sem_unlink", "µs", ("max", 1.3)),
    ("shm_open_us", "C: shm_open+ftruncate+close+shm_unlink", "µs", None),
    ("shm_us", "SharedMemory(1 MiB) create+touch+close+unlink", "µs", ("max", 1.3)),
    ("queue_us/{m}", "Queue round trip parent-child", "µs", ("max", 1.05)),
    ("pool_ms/{m}", "Pool(2).map 20,000 tasks, start-up incl.", "ms", ("max", 1.05)),
    ("value_us/{m}", "Value += 1 under its lock, 2 processes", "µs", ("max", 1.05)),
    ("handoff_shm_ready_ms", "100 MiB to a child: SharedMemory (array in it)", "ms", ("max", 1.1)),
    ("handoff_shm_copy_ms", "100 MiB to a child: SharedMemory + copy in", "ms", ("max", 1.1)),
    ("handoff_queue_ms", "100 MiB to a child: Queue (pickle)", "ms", None),
    ("speedup_ready", "100 MiB: Queue / SharedMemory (array in it)", "×", ("min_abs", 15)),
    ("speedup_copy", "100 MiB: Queue / SharedMemory + copy in", "×", None),
]


def expand_rows():
    for key, label, unit, target in ROWS:
        if "{m}" in key:
            for m in METHODS:
                yield key.format(m=m), "%s (%s)" % (label, m), unit, target
        else:
            yield key, label, unit, target


def stats(xs):
    xs = sorted(xs)
    med = statistics.median(xs)
    if len(xs) < 2:
        return {"median": med, "q1": med, "q3": med, "n": len(xs)}
    q = statistics.quantiles(xs, n=4, method="inclusive")
    return {"median": med, "q1": q[0], "q3": q[2], "n": len(xs)}


def add_speedups(vals):
    """Queue time / SharedMemory time, paired within each run (same process, same moment)."""
    for v in vals.values():
        for name, shm in (("speedup_ready", "handoff_shm_ready_ms"),
                          ("speedup_copy", "handoff_shm_copy_ms")):
            if shm in v:
                v[name] = [q / s for q, s in zip(v["handoff_queue_ms"], v[shm])]


def judge(target, cells):
    """True/False/None (no target or no data) and a short why."""
    if target is None or "native" not in cells:
        return None, ""
    kind, x = target
    base = cells["native"]
    others = {c: s for c, s in cells.items() if c != "native"}
    if kind == "min_abs":
        worst = min(cells, key=lambda c: cells[c]["median"])
        return cells[worst]["median"] >= x, "worst %s %.1f×" % (worst, cells[worst]["median"])
    if not others:
        return None, ""
    if kind == "noise":
        tol = max(x, (base["q3"] - base["q1"]) / base["median"])
        worst = max(others, key=lambda c: abs(others[c]["ratio"] - 1))
        return abs(others[worst]["ratio"] - 1) <= tol, "±%.2f; worst %s %.2f" % (
            tol, worst, others[worst]["ratio"])
    worst = max(others, key=lambda c: others[c]["ratio"])
    return others[worst]["ratio"] <= x, "worst %s %.2f" % (worst, others[worst]["ratio"])


def target_text(target, unit):
    if target is None:
        return "—"
    kind, x = target
    return {"noise": "1.00 ±noise", "max": "≤ %.2f×" % x, "min_abs": "≥ %g%s" % (x, unit)}[kind]


def fmt(x):
    return "%.0f" % x if x >= 100 else "%.1f" % x if x >= 10 else "%.2f" % x


def instr_check(key, ins):
    """Lock rows: the instruction counts decide when timing is inconclusive. (True, why) if every
    configuration is within 1% of native's instructions per pair, else None."""
    m = key.split("/")[-1]
    if not ins or not key.startswith("lock_ns/") or m not in ins:
        return None
    d = ins[m]
    worst = max((c for c in d if c != "native"), key=lambda c: abs(d[c] / d["native"] - 1))
    dev = d[worst] / d["native"] - 1
    return abs(dev) <= 0.01, "instructions: worst %s %+.1f%%" % (worst, 100 * dev)


def workload_rows(configs, vals, ins=None):
    rows = []
    for key, label, unit, target in expand_rows():
        cells = {}
        for c in configs:
            if vals.get(c, {}).get(key):
                cells[c] = stats(vals[c][key])
        if not cells:
            continue
        if "native" in cells and target != ("min_abs", 15) and unit != "×":
            for c, s in cells.items():
                s["ratio"] = s["median"] / cells["native"]["median"]
        met, why = judge(target, cells)
        ic = instr_check(key, ins)
        if ic is not None and not met:   # timing says no, instructions say equal: noise
            met, why = ic[0], why + "; " + ic[1]
        rows.append({"key": key, "label": label, "unit": unit, "target": target,
                     "cells": cells, "met": met, "why": why,
                     "values": {c: vals[c][key] for c in cells}})
    return rows


def startup_rows(st):
    """Rows of the start-up table: (label, ref name, ref stats, new stats, kind, target)."""
    out = []
    for prog, d in st["process"].items():
        tgt = ("ratio", 1.05) if prog == "/bin/true" else None
        out.append(("`%s`, LD_PRELOAD set vs not (µs, %d runs)" % (prog, len(d["native"])),
                    stats(d["native"]), stats(d["preload"]), "µs", tgt))
    def inproc(half, name):   # the hook alone, timed inside the interpreter
        xs = st["hook"][half]["inproc"].get(name)
        return "; hook alone %.0f µs in-process" % statistics.median(xs) if xs else ""

    w = st["hook"]["native"]["wall"]
    name = "hook, /dev/shm works"
    out.append(("`python3 -c pass`, hook installed, /dev/shm works (ms%s)" % inproc("native", name),
                stats(w["no hook"]), stats(w[name]), "ms", ("delta_ms", 1.0)))
    w = st["hook"]["none"]["wall"]
    ref = stats(w["off (reference: nothing works)"])
    for name in ("patch (ctypes, in-process)", "preload (re-exec)", "child: already preloaded",
                 "LD_PRELOAD, no hook"):
        out.append(("`python3 -c pass`, no /dev/shm: %s vs SHM_REDIRECT=off (ms%s)"
                    % (name, inproc("none", name)), ref, stats(w[name]), "ms", None))
    return out


def judge_startup(ref, new, kind_target):
    if kind_target is None:
        return None
    kind, x = kind_target
    if kind == "ratio":
        return new["median"] / ref["median"] <= x
    return (new["median"] - ref["median"]) / 1000 <= x


def markdown(meta, configs, rows, srows, ins=None):
    L = ["# shm-redirect benchmarks (`make bench`)", "",
         "%s · %s · kernel %s · %d CPUs · load %s→%s · %s%d rounds · %d s" % (
             meta["date"], meta["python"], meta["kernel"], meta["cpus"], meta["loadavg_start"],
             meta.get("loadavg_end", "?"), "QUICK (smoke, numbers are noise) · " if meta["quick"]
             else "", meta["rounds"], meta.get("duration_s", 0)), "",
         "Cells: median over rounds [interquartile range of the rounds] and ratio to native. "
         "Every configuration runs in the same sandbox (`tests/sandbox.sh --ro --uid=%s`), "
         "native with a fresh tmpfs at /dev/shm, the others with none." % meta["uid"], "",
         "| workload | unit | " + " | ".join(LABELS[c] for c in configs) + " | target | met |",
         "|---|---|" + "---|" * len(configs) + "---|---|"]
    for r in rows:
        cells = []
        for c in configs:
            s = r["cells"].get(c)
            if s is None:
                cells.append("n/a")
                continue
            txt = "%s [%s–%s]" % (fmt(s["median"]), fmt(s["q1"]), fmt(s["q3"]))
            if "ratio" in s and c != "native":
                txt += " **%.2f×**" % s["ratio"]
            cells.append(txt)
        met = {None: "", True: "yes", False: "**NO** (%s)" % r["why"]}[r["met"]]
        if r["met"] and r["why"]:
            met += " (%s)" % r["why"]
        L.append("| %s | %s | %s | %s | %s |" % (r["label"], r["unit"], " | ".join(cells),
                                                 target_text(r["target"], r["unit"]), met))
    if srows:
        L += ["", "Start-up (single runs, interleaved; [interquartile range of the runs]):", "",
              "| what | reference | with | extra | ratio | target | met |",
              "|---|---|---|---|---|---|---|"]
        for label, ref, new, unit, tgt in srows:
            div = 1000 if unit == "ms" else 1
            met = judge_startup(ref, new, tgt)
            tt = "—" if tgt is None else ("≤ %.2f×" % tgt[1] if tgt[0] == "ratio"
                                          else "≤ +%g ms" % tgt[1])
            L.append("| %s | %s [%s–%s] | %s [%s–%s] | %+.3f %s | %.3f | %s | %s |" % (
                label, fmt(ref["median"] / div), fmt(ref["q1"] / div), fmt(ref["q3"] / div),
                fmt(new["median"] / div), fmt(new["q1"] / div), fmt(new["q3"] / div),
                (new["median"] - ref["median"]) / div, unit, new["median"] / ref["median"], tt,
                {None: "", True: "yes", False: "**NO**"}[met]))
    if ins:
        L += ["", "Instructions per Lock acquire+release (valgrind --tool=callgrind; difference of "
              "runs with 0 and N pairs; exact, unlike a ~50 ns timing):", "",
              "| start method | " + " | ".join(LABELS[c] for c in configs if c in
                                              next(iter(ins.values()))) + " |",
              "|---|" + "---|" * len(next(iter(ins.values())))]
        for m, d in ins.items():
            L.append("| %s | %s |" % (m, " | ".join("%.1f" % d[c] for c in configs if c in d)))
    L += ["", "Why a target is missed: README.md, section Performance."]
    return "\n".join(L) + "\n"


def chart(path, configs, rows, srows):
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    ratio_rows = [r for r in rows if "native" in r["cells"] and r["unit"] != "×"
                  and len(r["cells"]) > 1]
    others = [c for c in configs if c != "native"]
    fig, (ax, ax2) = plt.subplots(1, 2, figsize=(15, 0.32 * len(ratio_rows) + 2.5),
                                  gridspec_kw={"width_ratios": [3, 1.3]})
    h = 0.8 / len(others)
    for i, c in enumerate(others):
        ys, xs, lo, hi = [], [], [], []
        for j, r in enumerate(ratio_rows):
            s = r["cells"].get(c)
            if s is None:
                continue
            base = r["cells"]["native"]["median"]
            ys.append(j + (i - (len(others) - 1) / 2) * h)
            xs.append(s["ratio"])
            lo.append(max(0, s["ratio"] - s["q1"] / base))
            hi.append(max(0, s["q3"] / base - s["ratio"]))
        ax.barh(ys, xs, height=h, xerr=[lo, hi], label=LABELS[c], error_kw={"lw": 0.6})
    for j, r in enumerate(ratio_rows):
        t = r["target"]
        if t and t[0] in ("max", "noise"):
            for x in ((t[1],) if t[0] == "max" else (1 - t[1], 1 + t[1])):
                ax.plot([x, x], [j - 0.45, j + 0.45], color="red", lw=1.2)
    ax.axvline(1.0, color="black", lw=0.8)
    ax.set_yticks(range(len(ratio_rows)))
    ax.set_yticklabels([r["label"] for r in ratio_rows], fontsize=7)
    ax.invert_yaxis()
    ax.set_xlabel("time relative to native /dev/shm (median; bars: IQR of rounds; red: target)")
    ax.set_xlim(0, max(2.0, min(4.0, ax.get_xlim()[1])))
    ax.legend(fontsize=7, loc="lower right")
    if srows:
        labels = [lab.replace("`", "").split(" (")[0][:48] for lab, *_ in srows]
        extra = [(new["median"] - ref["median"]) / 1000 for _, ref, new, _, _ in srows]
        ax2.barh(range(len(srows)), extra, color="tab:gray")
        ax2.axvline(1.0, color="red", lw=1, ls="--")
        ax2.set_yticks(range(len(srows)))
        ax2.set_yticklabels(labels, fontsize=6)
        ax2.invert_yaxis()
        ax2.set_xlabel("start-up: extra ms vs reference (red: 1 ms hook budget)")
    fig.suptitle("shm-redirect vs native /dev/shm (make bench)")
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


def write(outdir, meta, configs, vals, st, ins=None, fork_stress=None):
    os.makedirs(outdir, exist_ok=True)
    add_speedups(vals)
    rows = workload_rows(configs, vals, ins)
    srows = startup_rows(st) if st else []
    text = markdown(meta, configs, rows, srows, ins)
    with open(os.path.join(outdir, "bench.md"), "w") as f:
        f.write(text)
    doc = {"meta": meta, "configs": {c: LABELS[c] for c in configs}, "workloads": rows,
           "startup": [{"what": lab, "reference": ref, "with": new, "unit": unit,
                        "target": tgt, "met": judge_startup(ref, new, tgt)}
                       for lab, ref, new, unit, tgt in srows],
           "lock_instructions": ins, "startup_raw": st, "fork_stress": fork_stress}
    with open(os.path.join(outdir, "bench.json"), "w") as f:
        json.dump(doc, f, indent=1, ensure_ascii=False)
    try:
        chart(os.path.join(outdir, "bench.png"), configs, rows, srows)
    except ImportError as e:   # the tables and JSON are the result; the chart is a view
        text += "\n(no chart: %s; apt-get install python3-matplotlib)\n" % e
    return text
