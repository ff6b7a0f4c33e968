"""Exercises the generated Python SDK against a running Keyledger (see sdks.rs)."""

import os
import time

import keyledger_client
from keyledger_client import (
    AuthenticationError,
    KeyledgerClient,
    NotFoundError,
    PermissionDeniedError,
    RateLimitError,
)

assert "site-packages" in keyledger_client.__file__, keyledger_client.__file__
admin = os.environ["ADMIN_URL"]

# The key comes from KEYLEDGER_API_KEY.
client = KeyledgerClient(base_url=admin)
created = client.post_v1_keys({"name": "made by the python sdk", "scopes": ["FILES_READ"]})
assert created["key"].startswith("ak_live_"), created
fetched = client.get_v1_keys_by_id(created["id"])
assert fetched["name"] == "made by the python sdk", fetched
listed = client.get_v1_keys(query={"limit": 1})
assert listed["data"][0]["id"] == created["id"], listed

try:
    client.get_v1_keys_by_id("no such/key")
    raise AssertionError("expected NotFoundError")
except NotFoundError as e:
    assert e.status == 404 and e.code == "not_found", vars(e)

try:
    KeyledgerClient(api_key="kla_wrong_token_0123456789abcdef", base_url=admin).get_v1_keys()
    raise AssertionError("expected AuthenticationError")
except AuthenticationError as e:
    assert e.code == "unauthorized", vars(e)

try:
    KeyledgerClient(api_key=os.environ["READER_TOKEN"], base_url=admin).post_v1_keys({"name": "nope"})
    raise AssertionError("expected PermissionDeniedError")
except PermissionDeniedError as e:
    assert e.code == "forbidden", vars(e)

# 429: retried as Retry-After says (1 s, twice), then it succeeds.
limited = KeyledgerClient(base_url=os.environ["UPSTREAM_URL"], max_retries=3)
started = time.monotonic()
answer = limited.get_limited()
elapsed = time.monotonic() - started
assert answer["path"] == "/limited", answer
assert 1.9 <= elapsed < 10, elapsed

# Retries are bounded: then RateLimitError with the server's Retry-After.
try:
    KeyledgerClient(base_url=os.environ["UPSTREAM_URL"], max_retries=2).get_always_limited()
    raise AssertionError("expected RateLimitError")
except RateLimitError as e:
    assert e.status == 429 and e.retry_after == 0.0, vars(e)

try:
    KeyledgerClient(api_key="", base_url=admin)
    os.environ.pop("KEYLEDGER_API_KEY")
    KeyledgerClient(base_url=admin)
    raise AssertionError("expected a missing key to be refused")
except AuthenticationError:
    pass

print("python sdk ok")
