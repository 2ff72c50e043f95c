"""The `[vendors.*]` config tables that point sluice at a running sandbox."""

from __future__ import annotations

from typing import Any

from sandbox.credentials import SandboxCredentials

SANDBOX_SEGMENTS = {"vip": 100500, "newsletter": 100501}
"""Event segment ids mapped to the sandbox's pre-seeded PersonaClick segments."""


def sandbox_vendor_tables(base_url: str, credentials: SandboxCredentials | None = None) -> dict[str, Any]:
    """The four vendor tables (as `settings_from_mapping(...)["vendors"]` or TOML `[vendors.*]` take them)
    for a sandbox listening at `base_url`, e.g. "http://127.0.0.1:8090"."""
    c = credentials or SandboxCredentials()
    base = base_url.rstrip("/")
    return {
        "segmetrics": {
            "base_url": f"{base}/segmetrics/api/v1",
            "api_key": c.segmetrics_api_key,
            "account_id": c.segmetrics_account_id,
            "integration_id": c.segmetrics_integration_id,
            "ads_integration_id": c.segmetrics_ads_integration_id,
        },
        "salesmachine": {
            "base_url": f"{base}/salesmachine",
            "api_token": c.salesmachine_api_token,
            "api_secret": c.salesmachine_api_secret,
            "api_token_v2": c.salesmachine_api_token_v2,
        },
        "personaclick": {
            "base_url": f"{base}/personaclick",
            "shop_id": c.personaclick_shop_id,
            "shop_secret": c.personaclick_shop_secret,
            "segments": dict(SANDBOX_SEGMENTS),
        },
        "infinity": {
            "base_url": f"{base}/infinity",
            "igrp": c.infinity_igrp,
            "username": c.infinity_username,
            "password": c.infinity_password,
        },
    }
