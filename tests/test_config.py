"""Config (SPEC section 2): the TOML file, ${NAME} interpolation, REDIS_URL, and one line naming the key for
every kind of bad file, also from the real processes."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from config.settings import load_settings
from core.errors import ConfigError
from core.routing import DEFAULT_ROUTES

ROOT = Path(__file__).resolve().parents[1]

EXAMPLE = """
redis_url = "redis://localhost:6379/0"

[ingress]
max_body_bytes = 1048576
tolerance_seconds = 300
admin_token = "${SLUICE_ADMIN_TOKEN}"

[sources.shopfront]
scheme = "standard-webhooks"
secrets = ["whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw", "whsec_c2x1aWNlLWRlbW8tc2VjcmV0LWxvY2FsLW9ubHkhIQ=="]

[vendors.segmetrics]
base_url = "https://import.segmetrics.io/api/v1"
api_key = "${SEGMETRICS_API_KEY}"
account_id = "123"
integration_id = "456"
ads_integration_id = "789"

[vendors.salesmachine]
base_url = "https://api.salesmachine.io"
api_token = "${SALESMACHINE_TOKEN}"
api_secret = ""
api_token_v2 = ""

[vendors.personaclick]
base_url = "https://api.personaclick.com"
shop_id = "0d42fd8b713d0752776ca589cc0056"
shop_secret = "${PERSONACLICK_SECRET}"
segments = { vip = 100500 }

[vendors.infinity]
base_url = "https://api.infinitycloud.com"
igrp = 1
username = "${INFINITY_USER}"
password = "${INFINITY_PASSWORD}"

[delivery]
timeout_seconds = 10
schedule_seconds = [5, 30, 120, 600, 1800, 7200, 21600, 43200, 86400]
dedupe_seconds = 604800

[routes]
purchase = ["segmetrics.upsert_invoice"]
"""

ENV = {"SLUICE_ADMIN_TOKEN": "adm1n", "SEGMETRICS_API_KEY": "sm-key", "SALESMACHINE_TOKEN": "sm-tok",
       "PERSONACLICK_SECRET": "pc-sec", "INFINITY_USER": "inf", "INFINITY_PASSWORD": "inf-pw"}


def write(tmp_path: Path, text: str) -> dict[str, str]:
    path = tmp_path / "sluice.toml"
    path.write_text(text)
    return {"SLUICE_CONFIG": str(path), **ENV}


def test_the_spec_example_loads(tmp_path) -> None:
    """The example of SPEC section 2 loads, interpolated, with secrets redacted in repr."""
    settings = load_settings(write(tmp_path, EXAMPLE))
    assert settings.ingress.admin_token is not None and settings.ingress.admin_token.get_secret_value() == "adm1n"
    assert settings.vendors.personaclick is not None and settings.vendors.personaclick.segments == {"vip": 100500}
    assert settings.delivery.max_tries == 10
    assert settings.route_table["purchase"] == ("segmetrics.upsert_invoice",)
    assert settings.route_table["signup"] == DEFAULT_ROUTES["signup"]
    assert len(settings.sources["shopfront"].secrets) == 2
    shown = repr(settings)
    for secret in settings.secret_values():
        assert secret not in shown


def test_redis_url_from_the_environment_wins(tmp_path) -> None:
    env = write(tmp_path, EXAMPLE) | {"REDIS_URL": "redis://elsewhere:6380/2"}
    assert load_settings(env).redis_url == "redis://elsewhere:6380/2"


def test_defaults_from_an_empty_file(tmp_path) -> None:
    (tmp_path / "empty.toml").write_text("")
    settings = load_settings({"SLUICE_CONFIG": str(tmp_path / "empty.toml")})
    assert settings.sources == {} and settings.vendors.segmetrics is None
    assert settings.ingress.admin_token is None  # no token: the admin API answers 404


@pytest.mark.parametrize(
    ("text", "env", "key", "problem"),
    [
        (None, {}, "SLUICE_CONFIG", "not found"),
        ("redis_url = ", {}, "", "not valid TOML"),
        ('[sources.a]\nscheme = "hmac"\nsecrets = ["x"]', {}, "sources.a.scheme", "standard-webhooks"),
        ('[sources.a]\nscheme = "stripe"\nsecrets = []', {}, "sources.a.secrets", "at least 1"),
        ('[ingress]\nadmin_token = "${NOPE}"', {}, "ingress.admin_token", "environment variable NOPE is not set"),
        ('[delivery]\ntimeout_seconds = "ten"', {}, "delivery.timeout_seconds", "valid number"),
        ('[delivery]\nschedule_seconds = [5, -1]', {}, "delivery.schedule_seconds", "greater than 0"),
        ('[ingress]\nmax_body_bytes = 0', {}, "ingress.max_body_bytes", "greater than 0"),
        ('[routes]\npurchase = ["segmetrics.upsert_invoic"]', {}, "routes", "unknown operation"),
        ('[routes]\nrefund_maybe = ["segmetrics.upsert_invoice"]', {}, "routes", "unknown event type"),
        ('[vendors.segmetrics]\nbase_url = "https://x"\naccount_id = "1"\nintegration_id = "2"', {},
         "vendors.segmetrics.api_key", "required key is missing"),
        ('[vendors.infinity]\nbase_url = "ftp://x"\nigrp = 1\nusername = "u"\npassword = "p"', {},
         "vendors.infinity.base_url", "pattern"),
        ('[vendors.mailchimp]\nbase_url = "https://x"', {}, "vendors.mailchimp", "unknown key"),
        ('colour = "blue"', {}, "colour", "unknown key"),
    ],
)
def test_every_bad_file_names_the_key(tmp_path, text, env, key, problem) -> None:
    environ = {"SLUICE_CONFIG": str(tmp_path / "missing.toml")} if text is None else write(tmp_path, text)
    with pytest.raises(ConfigError) as raised:
        load_settings({**environ, **env})
    assert raised.value.key == key
    assert problem in str(raised.value)


@pytest.mark.parametrize("module", [["-m", "worker"], ["-m", "cli", "dlq", "list"],
                                    ["-m", "uvicorn", "--factory", "ingress.app:create_app", "--port", "0"]])
def test_processes_stop_with_one_line(tmp_path, module) -> None:
    """A bad config stops each process at startup with one line naming the key, never a traceback."""
    env = write(tmp_path, '[delivery]\ntimeout_seconds = "ten"')
    done = subprocess.run([sys.executable, *module], cwd=ROOT, env=env, capture_output=True, text=True,
                          timeout=60, check=False)
    assert done.returncode == 2
    assert done.stderr.strip() == ("sluice: config error: delivery.timeout_seconds: Input should be a valid number, "
                                   "unable to parse string as a number")
    assert "Traceback" not in done.stdout + done.stderr


def test_a_rate_wait_that_breaks_the_pickup_rule_is_refused() -> None:
    """SPEC rule 5: a dead worker's job is taken up within timeout_seconds + 30 s; a longer rate-limit wait in a
    run would push arq's job timeout past that."""
    from config.settings import settings_from_mapping
    from core.errors import ConfigError

    with pytest.raises(ConfigError) as raised:
        settings_from_mapping({"worker": {"rate_max_wait_seconds": 12}}, {})
    assert raised.value.key == "worker.rate_max_wait_seconds"
    ok = settings_from_mapping({"worker": {"rate_max_wait_seconds": 11}, "delivery": {"timeout_seconds": 300}}, {})
    assert ok.timing.pickup_seconds <= 300 + 30
    assert ok.timing.hold_ms / 1000 <= 300 + 30
