"""Credentials masked in what `sluice plan` shows: an `Authorization` header keeps only its scheme
(`Basic ****`; SegMetrics's raw key is all `****`), query parameters that carry credentials are `****`, and
every configured secret is `****` wherever it appears as a whole value (in a URL, a header, a body), as
written there: raw, form- or percent-encoded, or escaped inside a JSON string."""

from __future__ import annotations

import re
from collections.abc import Iterable
from urllib.parse import quote

import orjson

from handlers.base import php_urlencode

MASK = "****"

CREDENTIAL_PARAMS = ("api_key", "api_token", "api_secret", "shop_secret", "password", "token")
"""Query parameters whose values are credentials (SPEC section 6 names them), masked whatever they hold."""

_CREDENTIAL_QUERY = re.compile(r"(^|[?&])(" + "|".join(CREDENTIAL_PARAMS) + r")=[^&#]*")
_AUTH_HEADERS = frozenset({"authorization", "proxy-authorization"})


class Masker:
    def __init__(self, secrets: Iterable[str]) -> None:
        forms: set[str] = set()
        for secret in secrets:
            if secret:
                forms.update({secret, php_urlencode(secret), quote(secret, safe=""), orjson.dumps(secret).decode()[1:-1]})
        # a longer secret first (it may contain a shorter one); a whole value only, never the inside of a word
        # (a short secret such as "sec" must not turn `shop_secret` into `shop_****ret`)
        alternatives = "|".join(re.escape(form) for form in sorted(forms, key=len, reverse=True))
        self._secrets = re.compile(f"(?<![A-Za-z0-9])(?:{alternatives})(?![A-Za-z0-9])") if forms else None

    def text(self, text: str) -> str:
        return text if self._secrets is None else self._secrets.sub(MASK, text)

    def url(self, url: str) -> str:
        return self.text(_CREDENTIAL_QUERY.sub(lambda m: f"{m.group(1)}{m.group(2)}={MASK}", url))

    def header(self, name: str, value: str) -> str:
        masked = self.text(value)
        if name.lower() not in _AUTH_HEADERS:
            return masked
        scheme, sep, rest = masked.partition(" ")
        return f"{scheme} {MASK}" if sep and rest and scheme.isalpha() else MASK
