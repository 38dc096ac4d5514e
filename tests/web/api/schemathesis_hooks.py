"""schemathesis hooks for test_schemathesis.py (loaded through SCHEMATHESIS_HOOKS).

A list's `cursor` is opaque: only a cursor the API gave out continues a list, and any other
is refused (422, field `cursor`). schemathesis cannot make one, so "schema-valid request
rejected" for that reason alone is not a finding; every other failure is kept.
"""

from __future__ import annotations

from typing import Any

import schemathesis


@schemathesis.hook
def filter_failure(context: Any, failure: Any, case: Any, response: Any) -> bool:
    """Keep a failure unless it is a made-up cursor refused."""
    if failure.code != "ST202" or response.status_code != 422:
        return True
    try:
        errors = response.json().get("errors") or []
    except ValueError:
        return True
    return not errors or any(e.get("field") != "cursor" for e in errors)
