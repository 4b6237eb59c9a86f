"""The printed report of ``python -m bench.run_bench``: its results dict as tables.

Contract: :func:`report` only prints; it reads the dict that ``bench.run_bench`` also writes as JSON
and changes nothing in it.
"""

from __future__ import annotations

import argparse
import math
import os
import statistics
from typing import Any

from bench.history import short
from bench.services import MACHINE, TEMPORAL_PERSISTENCE
from bench.stats import print_table

PROC_ORDER = ["load generator", "api", "worker", "temporal server", "postgres"]


def _mmm(counts: dict[str, float]) -> str:
    return f"{counts['min']:g} / {counts['median']:g} / {counts['max']:g}"


def report(args: argparse.Namespace, results: dict[str, Any]) -> None:
    graph = args.graph
    print(
        f"\n=== runledger benchmark: {graph} vs bare Temporal, {os.cpu_count()} CPUs, "
        f"Temporal dev server {TEMPORAL_PERSISTENCE}, worker and API each in their own process ==="
    )
    print(
        f"code: {results['machine']['git']}; bytecode: {results['machine']['bytecode_cache']}; "
        f"API starts spread over {args.tenants} tenant(s)"
    )
    t = results["trigger"]["post_ms"]
    print_table(
        f"(a) API trigger latency, POST {'/api/v1/graphs/' + graph + '/runs'} over loopback HTTP, "
        f"{t['n']} sequential requests after warm-up (ms)",
        ["", "p50", "p90", "p99", "max", "mean"],
        [["POST latency", t["p50"], t["p90"], t["p99"], t["max"], t["mean"]]],
    )
    print(
        f"    {results['trigger']['requests_per_s']:.1f} requests/s sequentially; the triggered runs "
        f"finished {results['trigger']['drain_after_last_post_s']:.1f} s after the last POST "
        f"({results['trigger']['failed_runs']} failed)"
    )
    for error, count in results["trigger"]["start_errors"].items():
        print(f"    {count} start(s) failed: {error}")

    rows: list[list[object]] = []
    for r in results["rounds"]:
        g, b = r["graph"], r["bare"]
        rows.append(
            [
                f"round {r['round']}",
                g["n"],
                g["wall_s"],
                g["runs_per_s"],
                b["wall_s"],
                b["runs_per_s"],
                f"{r['ratio']:.2f}",
                g["failed"] + b["failed"],
            ]
        )
    if len(results["rounds"]) > 1:
        ratios = [r["ratio"] for r in results["rounds"]]
        rows.append(
            [
                "median",
                "",
                "",
                statistics.median(r["graph"]["runs_per_s"] for r in results["rounds"]),
                "",
                statistics.median(r["bare"]["runs_per_s"] for r in results["rounds"]),
                f"{statistics.median(ratios):.2f}",
                "",
            ]
        )
    print_table(
        f"(b) end-to-end throughput, N concurrent starts until every run is terminal ({graph} through the "
        "API; bare 1-activity workflow through the Temporal client)",
        ["", "N", f"{graph} wall s", f"{graph} runs/s", "bare wall s", "bare runs/s", "ratio", "failed"],
        rows,
    )
    for r in results["rounds"]:
        for label, part in ((graph, r["graph"]), ("bare", r["bare"])):
            for error, count in part.get("start_errors", {}).items():
                print(f"    round {r['round']} {label}: {count} start(s) failed: {error}")
            if part.get("start_errors") and part.get("postgres_activity"):
                print("    busy Postgres sessions during that burst (every 5 s; * = blocks other sessions):")
                for snap in part["postgres_activity"]:
                    for row in snap["sessions"]:
                        print(
                            f"      t+{snap['at_s']:>5.1f}s {row['sessions']:>3} {row['state']:<19} "
                            f"{row['waiting']:<26} {row['oldest_xact_s']:>6.2f}s "
                            f"{'*' if row['blocks_others'] else ' '} {row['query']}"
                        )
    last = results["rounds"][-1]
    lat_rows: list[list[object]] = []
    for label, part in ((graph, last["graph"]), ("bare", last["bare"])):
        s = part["server_latency_ms"]
        c = part["client_e2e_ms"]
        lat_rows.append([label, s["p50"], s["p95"], s["p99"], c["p50"], c["p95"]])
    if "post_ms" in last["graph"]:
        p = last["graph"]["post_ms"]
        lat_rows.append([f"{graph} POST only", "", "", "", p["p50"], p["p95"]])
    print_table(
        "    per-run latency under the last burst (ms; server = WF started -> WF completed in history, "
        "client = start request -> result)",
        ["", "server p50", "server p95", "server p99", "client p50", "client p95"],
        lat_rows,
    )
    pg = last["graph"]["postgres"]
    print(
        f"    Postgres after the last {graph} burst: {pg['by_status']}, last run terminal "
        f"{pg.get('wall_until_last_terminal_in_postgres_s', math.nan):.2f} s after the first POST"
    )

    sg, sb = results["single"]["graph"], results["single"]["bare"]
    bg, bb = last["graph"]["history_events"], last["bare"]["history_events"]
    print_table(
        "(c) Temporal history events per run",
        ["", "single runs (min/median/max)", "burst runs (min/median/max)"],
        [
            [graph, _mmm(sg["history_events"]), _mmm(bg)],
            ["bare", _mmm(sb["history_events"]), _mmm(bb)],
        ],
    )

    for label, key in ((graph, "graph"), ("bare", "bare")):
        for where, part in (
            ("single", results["single"][key]["breakdown"]),
            ("burst", results["burst_breakdown"][key]),
        ):
            for other in part["other_sequences"]:
                print(
                    f"    {label}, {where} runs: {other['runs']} of {part['of']} "
                    f"had {other['events']} events: "
                    f"{other['sequence']}"
                )

    print_table(
        f"single runs, one at a time on an idle stack ({args.single} each; ms)",
        ["", "client p50", "client p95", "server p50", "server p95", "POST p50"],
        [
            [
                graph,
                sg["client_e2e_ms"]["p50"],
                sg["client_e2e_ms"]["p95"],
                sg["server_ms"]["p50"],
                sg["server_ms"]["p95"],
                sg["post_ms"]["p50"],
            ],
            [
                "bare",
                sb["client_e2e_ms"]["p50"],
                sb["client_e2e_ms"]["p95"],
                sb["server_ms"]["p50"],
                sb["server_ms"]["p95"],
                "",
            ],
        ],
    )
    for label, key in ((graph, "graph"), ("bare", "bare")):
        single = results["single"][key]["breakdown"]
        loaded = results["burst_breakdown"][key]
        same = loaded["sequence"] == single["sequence"]
        step_rows: list[list[object]] = [
            [
                s["step"],
                s["p50_ms"],
                s["p95_ms"],
                loaded["steps"][i]["p50_ms"] if same else "",
                loaded["steps"][i]["p95_ms"] if same else "",
                s["meaning"],
            ]
            for i, s in enumerate(single["steps"])
        ]
        print_table(
            f"where a {label} run's time goes: gaps between its history events (ms; idle = "
            f"{single['runs']}/{single['of']} single runs, burst = {loaded['runs']}/{loaded['of']} "
            "burst runs with the same event sequence)",
            ["step", "idle p50", "idle p95", "burst p50", "burst p95", "what it is"],
            step_rows,
        )
        if loaded["sequence"] != single["sequence"]:
            print(f"    (the burst's most common sequence differs: {[short(n) for n in loaded['sequence']]})")

    cpu_rows: list[list[object]] = []
    for r in results["rounds"]:
        for label, part in ((graph, r["graph"]), ("bare", r["bare"])):
            cpu = part["cpu_s"]
            ours = sum(cpu.get(p, 0.0) for p in PROC_ORDER)
            others = max(cpu.get(MACHINE, 0.0) - ours, 0.0)
            cpu_rows.append(
                [
                    f"round {r['round']} {label}",
                    part["wall_s"],
                    *(cpu.get(p, math.nan) * 1000 / part["n"] for p in PROC_ORDER),
                    ours * 1000 / part["n"],
                    ours / part["wall_s"],
                    others / part["wall_s"],
                ]
            )
    print_table(
        "CPU per run, by process, during each burst (CPU-ms per run = the process's CPU over the burst / N; "
        "cores = CPU-s / wall s: 'bench' = these processes, 'others' = everything else on the machine, "
        f"which has {os.cpu_count()} cores)",
        ["burst", "wall s", *PROC_ORDER, "total", "bench cores", "others cores"],
        cpu_rows,
    )
    load = results["load_average"]
    print(f"    load average (1 min) before the run {load['before'][0]:.2f}, after {load['after'][0]:.2f}")
    rss = results["peak_rss_mib"]
    print_table(
        "peak RSS (VmHWM, MiB; Postgres is multi-process with shared buffers, so not summed here)",
        list(rss),
        [[rss[name] if rss[name] is not None else math.nan for name in rss]],
    )
    profile = results.get("worker_profile")
    if profile:
        print_table(
            f"worker CPU profile, whole run ({profile['total_cpu_s']:.1f} CPU-s, thread CPU clocks; "
            "PROFILED RUN: its runs/s above are not comparable): own CPU by package",
            ["package", "CPU s", "share %"],
            [[p["package"], p["cpu_s"], p["share"] * 100] for p in profile["by_package"]],
        )
        by_thread = dict(profile["by_thread"])
        instances = by_thread.pop("workflow instances created", 0)
        print_table(
            f"    CPU by kind of work ({instances:g} workflow instances created)",
            ["work", "CPU s", "share %"],
            [
                [name, secs, secs / profile["total_cpu_s"] * 100]
                for name, secs in sorted(by_thread.items(), key=lambda item: -item[1])
            ],
        )
        print_table(
            "    functions with the most own CPU",
            ["function", "own CPU s", "cumulative s", "calls"],
            [
                [f["function"], f["own_cpu_s"], f["cumulative_s"], f["calls"]]
                for f in profile["top_functions"]
            ],
        )
        print(f"    full profile: {profile['pstats']} (python -m pstats)")
    ledger = results["ledger_check"]
    print(
        f"\nledger check over all {ledger['runs']} {graph} runs: {ledger['by_status']}, "
        f"{ledger['model_calls']} model calls, {ledger['charged_credits']} credits charged"
    )
    for failure in ledger["not_successful"]:
        print(
            f"    {failure['runs']} run(s) {failure['status']}: "
            f"{failure['error_code']}: {failure['error_message']}"
        )
