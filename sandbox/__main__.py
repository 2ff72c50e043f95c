"""`python -m sandbox --host 127.0.0.1 --port 8090`: the sandbox as a process of its own."""

from __future__ import annotations

import argparse

import uvicorn

from sandbox.app import create_sandbox_app


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m sandbox", description=__doc__)
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=8090)
    parser.add_argument("--log-level", default="warning")
    args = parser.parse_args(argv)
    uvicorn.run(
        create_sandbox_app(),
        host=args.host,
        port=args.port,
        log_level=args.log_level,
        access_log=False,
        lifespan="off",
        ws="none",
        loop="asyncio",
        timeout_graceful_shutdown=2,
    )


if __name__ == "__main__":
    main()
