"""Instructions per event, counted by valgrind's callgrind: a figure the machine's noise does not move.

    .venv/bin/python bench/instructions.py [--small 300] [--large 1500]

CPU seconds on a shared machine drift by 10-30 % from run to run, more than most single changes are worth;
instruction counts repeat to within a fraction of a percent for the same code and inputs. Each process is run
under `valgrind --tool=callgrind` twice, with a small and a large number of events, and the difference of the
two totals divided by the difference of the counts is its cost per event (start-up and shutdown cancel out):
  web     the `web:` process (`ingress.app:create_app`) answering signed `purchase` events (64 connections)
  bare    the bare Starlette endpoint of bench/ingress.py under the same load, as the baseline
  worker  one `python -m worker` draining the events (3 vendor calls each) from a queue filled beforehand,
          against the sandbox (native), as in bench/e2e.py
User-space instructions only: the kernel's share (sockets) is not in them, so the ratio web/bare is not the
throughput ratio of bench/ingress.py, only a steady measure of the Python work a change adds or removes.
To compare two commits, run this script from a `git worktree` of each (with PYTHONPATH set to it).
"""

from __future__ import annotations

import argparse
import os
import re
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench.common import (  # noqa: E402
    ROOT, UVICORN_FLAGS, VENV_BIN, Workdir, bench_config, figures, free_port, post_all, say, start_redis, table,
    wait_port,
)
from bench.e2e import CALLS, System  # noqa: E402

WEB = {"web": "ingress.app:create_app", "bare": "bench.bare_app:create_app"}


def under_callgrind(cmd: list[str], work: Workdir, name: str, env: dict[str, str]) -> subprocess.Popen[bytes]:
    with open(work.path / f"{name}.log", "wb") as log:  # the child keeps its own copy of the descriptor
        return subprocess.Popen(["valgrind", "--tool=callgrind", f"--callgrind-out-file={work.path / name}.cg",
                                 *cmd], cwd=ROOT, env=env, stdout=log, stderr=subprocess.STDOUT)


def instructions(proc: subprocess.Popen[bytes], work: Workdir, name: str) -> int:
    """Stop the process (SIGTERM, a graceful shutdown) and read the total callgrind printed."""
    proc.send_signal(signal.SIGTERM)
    proc.wait(timeout=300)
    text = (work.path / f"{name}.log").read_text(errors="replace")
    found = re.search(r"Collected : (\d+)", text)
    if found is None:
        raise RuntimeError(f"no callgrind total for {name}: {text[-500:]}")
    return int(found.group(1))


def web_run(variant: str, events: int, system: System, work: Workdir) -> int:
    port = free_port()
    name = f"{variant}-{events}"
    proc = under_callgrind([str(VENV_BIN / "uvicorn"), "--factory", WEB[variant], "--host", "127.0.0.1", "--port",
                            str(port), *UVICORN_FLAGS], work, name, {**os.environ, "SLUICE_CONFIG": str(system.config)})
    wait_port(port, timeout=300, proc=proc)
    system.fresh()
    _, requests = system.requests(events)  # their Host header names the native web process: no matter
    _, _, status = post_all(port, requests)
    if any(s != 202 for s in status):
        raise RuntimeError(f"{variant}: not every request was answered 202")
    return instructions(proc, work, name)


def worker_run(events: int, system: System, work: Workdir) -> int:
    system.fresh()
    _, requests = system.requests(events)
    post_all(system.web.port, requests)
    name = f"worker-{events}"
    proc = under_callgrind([sys.executable, "-m", "worker"], work, name,
                           {**os.environ, "SLUICE_CONFIG": str(system.config)})
    system.wait_calls(events * len(CALLS), timeout=600)
    time.sleep(0.5)  # the last ledger writes and arq's finish after the last vendor call
    return instructions(proc, work, name)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--small", type=int, default=300)
    parser.add_argument("--large", type=int, default=1500)
    parser.add_argument("--processes", default="bare,web,worker", help="comma-separated subset")
    args = parser.parse_args()
    names = [n for n in args.processes.split(",") if n]
    if shutil.which("valgrind") is None:
        raise SystemExit("bench: needs valgrind (apt-get install -y valgrind)")
    work = Workdir()
    system = System(work)
    try:
        per_event: dict[str, float] = {}
        rows = []
        for name in names:
            totals = []
            for events in (args.small, args.large):
                say(f"{name}: {events} events under callgrind")
                total = worker_run(events, system, work) if name == "worker" else web_run(name, events, system, work)
                totals.append(total)
            per_event[name] = (totals[1] - totals[0]) / (args.large - args.small)
            rows.append([name, totals[0], totals[1], per_event[name]])
        print(table(["process", f"instructions, {args.small} events", f"instructions, {args.large} events",
                     "per event"], rows))
        out = {f"{name}_instr_per_event": round(count) for name, count in per_event.items()}
        if "web" in per_event and "bare" in per_event:
            out["web_to_bare"] = round(per_event["web"] / per_event["bare"], 2)
        print(figures(**out))
    finally:
        system.close()
        work.cleanup()


if __name__ == "__main__":
    main()
