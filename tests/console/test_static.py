"""The console's one script: htmx, vendored and pinned. Its bytes must be exactly the release's, and the
pages must load exactly that file."""

from __future__ import annotations

import hashlib

from ingress.console.render import HTMX, STATIC, TEMPLATES

HTMX_VERSION = "2.0.11"
HTMX_SHA256 = "d6fdc75f204e6bdefa99b69bf1e6d4ac69b8a364f77929f45c13476b4000f717"
"""sha256 of dist/htmx.min.js in the npm package htmx.org@2.0.11 (whose tarball npm checked against the
registry's sha512 integrity when it was packed)."""


def test_htmx_is_the_pinned_release() -> None:
    data = (STATIC / HTMX).read_bytes()
    assert hashlib.sha256(data).hexdigest() == HTMX_SHA256
    assert f'version:"{HTMX_VERSION}"'.encode() in data
    assert HTMX == f"htmx-{HTMX_VERSION}.min.js"


def test_the_static_folder_holds_only_what_the_pages_use() -> None:
    assert sorted(p.name for p in STATIC.iterdir()) == ["console.css", HTMX]
    base = (TEMPLATES / "base.html").read_text()
    assert '<script src="/console/static/{{ htmx }}" defer></script>' in base
    assert "/console/static/console.css" in base
