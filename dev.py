"""Developer entry point, standard library only, so it runs on a fresh machine.

    python3 dev.py up      bring up Redis (or use REDIS_URL), the vendor sandbox, web and a worker
    python3 dev.py test    run the test suite (extra arguments go to pytest)

Both create `.venv/` and install the project into it when missing or when pyproject.toml changed.
"""

from __future__ import annotations

import hashlib
import os
import subprocess
import sys
import venv
from pathlib import Path

ROOT = Path(__file__).resolve().parent
VENV = ROOT / ".venv"
PY = VENV / "bin" / "python"


def ensure_venv() -> None:
    """Create the virtualenv and install the project when pyproject.toml changed since the last install."""
    if sys.version_info < (3, 11):
        sys.exit(f"sluice needs Python 3.11 or newer; this is {sys.version.split()[0]}")
    stamp = VENV / ".sluice-installed"
    digest = hashlib.sha256((ROOT / "pyproject.toml").read_bytes()).hexdigest()
    if stamp.exists() and stamp.read_text() == digest and PY.exists():
        return
    if not PY.exists():
        print("creating .venv", flush=True)
        venv.create(VENV, with_pip=True)
    print("installing sluice and its dependencies into .venv", flush=True)
    pip = [str(PY), "-m", "pip", "install", "--quiet", "--disable-pip-version-check"]
    subprocess.run([*pip, "--upgrade", "pip"], check=True)
    subprocess.run([*pip, "-e", f"{ROOT}[dev]"], check=True)
    stamp.write_text(digest)


def main(argv: list[str]) -> int:
    if not argv or argv[0] not in {"up", "test"}:
        print(__doc__)
        return 2
    ensure_venv()
    if argv[0] == "test":
        return subprocess.call([str(PY), "-m", "pytest", *argv[1:]], cwd=ROOT)
    os.execv(str(PY), [str(PY), "-m", "cli.up", *argv[1:]])
    return 0  # not reached


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
