"""Tables of bench/auth_bench.py's results."""

from __future__ import annotations

import statistics
from typing import Any

from bench.common import console, table

TARGET_OVERHEAD = 0.03
MODES = ("real", "noop")
RUN_COLUMNS = [
    "schedule",
    "round",
    "auth",
    "req/s",
    "p50 ms",
    "p99 ms",
    "errors",
    "CPU ms/req",
    "other CPU s",
]
MEDIAN_FIELDS = ("runs", "requests_per_s", "p50_ms", "p99_ms", "cpu_ms_per_request")


def _verdict(median: float, rounds: list[float]) -> str:
    """met / MISSED, or inconclusive when the rounds disagree by more than the target
    (half their interquartile range): the machine was too busy to tell."""
    q1, _q2, q3 = statistics.quantiles(rounds, n=4, method="inclusive")
    spread = (q3 - q1) / 2
    if spread > TARGET_OVERHEAD:
        return f"inconclusive: rounds spread +/-{spread:.0%}"
    return "met" if median <= TARGET_OVERHEAD else "MISSED"


def show(results: dict[str, Any]) -> None:
    console.print(
        table(
            "Runs (in the order measured)",
            RUN_COLUMNS,
            [
                (
                    r["schedule"],
                    r["round"] + 1,
                    r["mode"],
                    r["requests_per_s"],
                    r["p50_ms"],
                    r["p99_ms"],
                    r["errors"],
                    r["cpu_ms_per_request"],
                    r["cpu"].get("other_cpu_s"),
                )
                for r in results["runs"]
            ],
        )
    )
    summary = results.get("summary")
    if not summary:
        return
    medians, overhead = [], []
    for schedule, s in summary.items():
        medians += [(schedule, m, *(s[m][k] for k in MEDIAN_FIELDS)) for m in MODES]
        o = s["overhead"]
        verdict = _verdict(o["throughput_paired_median"], o["throughput_paired"])
        overhead += [
            (
                f"{schedule}: throughput, median of rounds",
                f"{o['throughput_paired_median']:+.1%} ({verdict})",
            ),
            (f"{schedule}: per round", ", ".join(f"{x:+.0%}" for x in o["throughput_paired"])),
            (f"{schedule}: CPU per request", f"{o['cpu_per_request_paired_median']:+.1%}"),
            (f"{schedule}: added median latency", f"{o['p50_ms_added']:+.2f} ms"),
        ]
    c = results["in_process"]
    overhead.append(
        (
            "in process: authenticate + record",
            f"{c['authenticate_us']:.1f} + {c['record_us']:.1f} us per request = "
            f"{c['share']:.1%} of the no-op server's CPU per request",
        )
    )
    u = results["usage_check"]
    overhead.append(
        (
            "usage counted by the real server",
            f"{u['counted']:,} requests (>= {u['measured_real_requests']:,} measured: "
            f"{'yes' if u['ok'] else 'NO'})",
        )
    )
    console.print(
        table(
            "Medians",
            ["schedule", "auth", "runs", "req/s", "p50 ms", "p99 ms", "CPU ms/req"],
            medians,
        )
    )
    console.print(
        table(
            f"Authentication overhead, real vs no-op (target <= {TARGET_OVERHEAD:.0%})",
            ["measure", "value"],
            overhead,
        )
    )
    console.print(
        "A negative overhead means the real server happened to be faster. Other CPU s: "
        "CPU time other processes of the machine used during the run (noise)."
    )
