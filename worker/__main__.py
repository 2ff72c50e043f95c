"""`python -m worker`: one arq worker (the Procfile's `worker:` process)."""

from __future__ import annotations

from arq.worker import run_worker

from config.logging import configure_logging
from config.settings import load_or_exit
from worker.app import worker_settings


def main() -> None:
    settings = load_or_exit()
    configure_logging()
    run_worker(worker_settings(settings))  # type: ignore[arg-type]


if __name__ == "__main__":
    main()
