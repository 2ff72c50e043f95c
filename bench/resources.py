"""Resources: peak RSS and CPU seconds per 1,000 events of the `web:` and `worker:` processes.

    .venv/bin/python bench/resources.py [--events 10000]

1 web + 1 worker (fresh processes), the sandbox and a private Redis, as in bench/e2e.py. --events `purchase`
events (3 vendor calls each) are posted at full load (64 connections) and delivered; then each process's peak
RSS (VmHWM) and user+system CPU seconds (from /proc, process start included) are read.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench.common import Workdir, figures, proc_cpu_seconds, proc_peak_rss_mb, say, table  # noqa: E402
from bench.e2e import System  # noqa: E402


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--events", type=int, default=10_000)
    args = parser.parse_args()
    work = Workdir()
    system = System(work)
    try:
        system.fresh()
        [worker] = system.start_workers(1)
        pids = {"web": system.web.pid, "worker": worker.pid}
        idle = {name: proc_cpu_seconds(pid) for name, pid in pids.items()}
        say(f"posting {args.events} events")
        out = system.run_events(args.events)
        rows = []
        result: dict[str, float] = {}
        for name, pid in pids.items():
            cpu = proc_cpu_seconds(pid)
            rss = proc_peak_rss_mb(pid)
            per_k = (cpu - idle[name]) / args.events * 1000
            rows.append([name, rss, cpu, per_k])
            result[f"{name}_peak_rss_mb"] = rss
            result[f"{name}_cpu_s_per_1k"] = per_k
        print(table(["process", "peak RSS MiB", "CPU s total", "CPU s per 1,000 events (load only)"], rows))
        print(f"\n{args.events} events delivered at {out['events_per_s']:.0f}/s ({out['calls']} vendor calls)")
        print(figures(events=args.events, **result, target_web_rss_mb=120.0, target_worker_rss_mb=150.0))
    finally:
        system.close()
        work.cleanup()


if __name__ == "__main__":
    main()
