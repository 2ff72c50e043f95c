"""Redis commands per event, ordering on vs off: a figure no noise moves.

    .venv/bin/python bench/redis_commands.py [--events 500] [--contacts 100]

A private redis-server, the vendor sandbox in process, purchases (3 vendor calls each) accepted through the
intake script and delivered by one burst worker; Redis's own `INFO commandstats` counts every command it ran,
those called from inside scripts too: printed per event, in all and by name, with the script calls
(`evalsha`) among them, and Redis's own CPU per event.
"""

from __future__ import annotations

import argparse
import asyncio
import sys
from pathlib import Path
from typing import Any

import orjson
import redis.asyncio as aredis

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from cli.samples import numbered_contact, sample_event  # noqa: E402
from config.settings import settings_from_mapping  # noqa: E402
from store.intake import Intake  # noqa: E402
from store.keys import Keys  # noqa: E402
from tests.support.redis_server import RedisServer  # noqa: E402
from tests.support.sandbox import SandboxServer  # noqa: E402
from tests.support.worker import run_burst  # noqa: E402

async def commands(client: aredis.Redis) -> dict[str, int]:
    stats = await client.info("commandstats")
    cpu = await client.info("cpu")
    io = await client.info("stats")
    found = {name.removeprefix("cmdstat_"): int(v["calls"]) for name, v in stats.items()}
    found["cpu_us"] = int((cpu["used_cpu_sys"] + cpu["used_cpu_user"]) * 1_000_000)
    found["reads"] = int(io["total_reads_processed"])  # socket reads Redis made: about one per round trip
    return found


def delta(after: dict[str, int], before: dict[str, int]) -> dict[str, int]:
    return {k: after[k] - before.get(k, 0) for k in after if after[k] - before.get(k, 0)}


async def measure(url: str, sandbox: SandboxServer, events: int, contacts: int, ordering: bool) -> dict[str, Any]:
    data = {
        "redis_url": url, "namespace": f"rc{int(ordering)}",
        "sources": {"shop": {"scheme": "stripe", "secrets": ["s"]}},
        "vendors": {**sandbox.vendor_tables()},
        "delivery": {"timeout_seconds": 5, "schedule_seconds": [0.1], "ordering": ordering},
    }
    data["vendors"]["salesmachine"]["rate_per_second"] = 100_000
    settings = settings_from_mapping(data, {})
    client = aredis.Redis.from_url(url)
    intake = Intake(client, Keys(settings.namespace), settings.delivery)
    batch = []
    for i in range(events):
        event = sample_event("purchase", 1_795_000_000.0 + i, f"evt_{i}")
        event["contact"] = numbered_contact(i % contacts)
        batch.append(event)
    before = await commands(client)
    for event in batch:
        await intake.accept("shop", event, orjson.dumps(event))
    accepted = await commands(client)
    await run_burst(settings, timeout=300)
    done = await commands(client)
    await client.aclose()
    return {"ordering": ordering, "intake": delta(accepted, before), "worker": delta(done, accepted)}


def per_event(cmds: dict[str, int], events: int) -> str:
    cpu = (cmds.get("cpu_us", 0)) / events
    counted = {k: v for k, v in cmds.items() if k not in ("info", "cpu_us", "reads")}
    top = ", ".join(f"{k} {v / events:.2f}" for k, v in sorted(counted.items(), key=lambda kv: -kv[1]))
    return (f"{sum(counted.values()) / events:.2f} commands ({counted.get('evalsha', 0) / events:.2f} of them "
            f"script calls), {cmds.get('reads', 0) / events:.2f} round trips, Redis CPU {cpu:.0f} us; {top}")


async def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--events", type=int, default=500)
    parser.add_argument("--contacts", type=int, default=100)
    args = parser.parse_args()
    with RedisServer() as server, SandboxServer() as sandbox:
        rows = [await measure(server.url, sandbox, args.events, args.contacts, ordering)
                for ordering in (False, True)]
    for row in rows:
        name = "on " if row["ordering"] else "off"
        print(f"ordering {name} intake: {per_event(row['intake'], args.events)}")
        print(f"ordering {name} worker: {per_event(row['worker'], args.events)}")


if __name__ == "__main__":
    asyncio.run(main())
