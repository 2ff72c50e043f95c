"""The credentials the sandbox accepts. They guard nothing (the sandbox holds no real data); they exist so
that the emulators can check auth exactly the way each vendor does, and tests can prove a wrong key fails."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class SandboxCredentials:
    # SegMetrics: raw `Authorization: <api_key>`, ids in the path
    segmetrics_api_key: str = "segmetrics-sandbox-key"
    segmetrics_account_id: str = "1001"
    segmetrics_integration_id: str = "2002"
    segmetrics_ads_integration_id: str = "3003"
    # Salesmachine: v1 `?api_token=` or Basic token:secret; v2 Basic `<v2token>:` or Bearer
    salesmachine_api_token: str = "salesmachine-sandbox-token"
    salesmachine_api_secret: str = "salesmachine-sandbox-secret"
    salesmachine_api_token_v2: str = "salesmachine-sandbox-token-v2"
    # PersonaClick: shop_id (30 hex characters) and shop_secret in the body or query
    personaclick_shop_id: str = "5a1b2c3d4e5f60718293a4b5c6d7e8"
    personaclick_shop_secret: str = "personaclick-sandbox-secret"
    # Infinity: Basic user:pass (v2), or `Authorization: ApiKey <key>` (v2.1); igrp 1 is ours, 2 is forbidden
    infinity_username: str = "infinity-sandbox"
    infinity_password: str = "infinity-sandbox-password"
    infinity_api_key: str = "infinity-sandbox-apikey"
    infinity_igrp: int = 1
    infinity_forbidden_igrp: int = 2
