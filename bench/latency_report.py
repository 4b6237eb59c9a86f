"""The printed report of ``python -m bench.latency_bench``: its results dict as tables, and a
profiled worker's CPU summary.

Contract: only prints; reads the results dict (which latency_bench also writes as JSON) and a
``.pstats`` file, and changes neither.
"""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

from bench import profiling
from bench.services import REPO_ROOT
from bench.stats import print_table


def report(args: argparse.Namespace, results: dict[str, Any]) -> None:
    print(
        f"\nrunledger at model latency: {args.graph}, provider delay {args.delay} s, {args.chunks} chunks "
        f"per answer, {args.clients} concurrent API clients, one billing account"
    )
    bare = results.get("bare")
    rows = []
    for e in results["graph"]:
        ratio = e["runs_per_s"] / bare["runs_per_s"] if bare else float("nan")
        rows.append(
            [
                f"runledger, {e['workers']} worker(s)",
                e["runs"],
                e["wall_s"],
                e["runs_per_s"],
                f"{ratio:.2f}",  # two decimals: the target is 0.5
                e["peak_model_calls"],
                e["p50_s"] * 1000,
                e["p99_s"] * 1000,
                e["starts_per_s"],
                e["failed"],
            ]
        )
    if bare:
        rows.append(
            [
                "bare Temporal (1 activity sleeping the delay)",
                bare["runs"],
                bare["wall_s"],
                bare["runs_per_s"],
                1.0,
                bare.get("peak_activities", "-"),
                bare["p50_s"] * 1000,
                bare["p99_s"] * 1000,
                "-",
                0,
            ]
        )
    if rows:
        print_table(
            "Burst: time to all terminal",
            ["", "runs", "wall s", "runs/s", "ratio", "peak calls", "p50 ms", "p99 ms", "starts/s", "failed"],
            rows,
        )
        print(
            "peak calls: runledger's model calls at the provider at once; bare's, its sleeping "
            "activities running at once (from their histories)"
        )
        for e in results["graph"]:
            n = e["runs"]
            cpu = e["cpu_s"]
            cpu_rows = [[name, secs, secs / n * 1000] for name, secs in cpu.items()]
            print_table(
                f"CPU during the burst on {e['workers']} worker(s) ({n} runs, {args.chunks} chunks each)",
                ["process", "CPU s", "ms per run"],
                cpu_rows,
            )
            worker_ms = sum(v for k, v in cpu.items() if k.startswith("worker")) / n * 1000
            print(
                f"worker CPU per streamed chunk: {worker_ms / max(1, args.chunks):.3f} ms (incl. per-run cost)"
            )
            rss = e["peak_rss_mib"]
            print("peak RSS MiB: " + ", ".join(f"{k} {v:,.0f}" for k, v in rss.items() if v is not None))
            if e["errors"]:
                print(f"not successful: {e['errors']}")
            if e.get("phases"):
                _print_p50_p99(
                    "Where a run's time went (Postgres clocks: start committed → authorized → first call "
                    "pending → last call settled → end committed)",
                    "phase",
                    e["phases"],
                )
            if e.get("queue"):
                _print_p50_p99(
                    "Inside 'queued': each step's offset from the start's commit (a sample of the runs' "
                    "histories)",
                    "step",
                    e["queue"]["steps"],
                )
                print(f"history events per run: {e['queue']['history_events']}")
    if results["scale"]:
        print_table(
            "Cost per run as the table grows"
            + (
                f" (at most {args.in_flight} runs open at once)"
                if args.in_flight
                else " (each burst at once)"
            ),
            [
                "runs",
                "wall s",
                "ms wall per run",
                "worker CPU ms per run",
                "API CPU ms per run",
                "GET /runs p50 ms",
            ],
            [
                [
                    e["runs"],
                    e["wall_s"],
                    e["wall_s"] / e["runs"] * 1000,
                    sum(v for k, v in e["cpu_s"].items() if k.startswith("worker")) / e["runs"] * 1000,
                    e["cpu_s"].get("api", 0.0) / e["runs"] * 1000,
                    e["list_runs_p50_ms"],
                ]
                for e in results["scale"]
            ],
        )
    print(f"\nledger check: {results['ledger_check']}")
    for problem in results["problems"]:
        print(f"CHECK FAILED: {problem}")


def _print_p50_p99(title: str, label: str, seconds: dict[str, list[float]]) -> None:
    """A ``{name: [p50_s, p99_s]}`` of ``bench.phases`` as a table in milliseconds."""
    print_table(
        title, [label, "p50 ms", "p99 ms"], [[k, p50 * 1000, p99 * 1000] for k, (p50, p99) in seconds.items()]
    )


def print_profile(path: Path) -> None:
    """Where a profiled worker's CPU went: by package, by kind of work, the costliest functions."""
    summary = profiling.summarize(path, REPO_ROOT, top=25)
    print(
        f"\nworker profile {path.name}: {summary['total_cpu_s']:.1f} CPU-s (PROFILED: figures above are slowed)"
    )
    print_table(
        "own CPU by package",
        ["package", "CPU s", "share %"],
        [[p["package"], p["cpu_s"], p["share"] * 100] for p in summary["by_package"]],
    )
    print_table(
        "CPU by kind of work",
        ["work", "CPU s"],
        [[name, secs] for name, secs in summary["by_thread"].items()],
    )
    print_table(
        "functions with the most own CPU",
        ["function", "own CPU s", "cumulative s", "calls"],
        [[f["function"], f["own_cpu_s"], f["cumulative_s"], f["calls"]] for f in summary["top_functions"]],
    )
