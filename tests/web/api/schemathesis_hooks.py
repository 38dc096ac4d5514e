"""schemathesis hooks for test_schemathesis.py (loaded through SCHEMATHESIS_HOOKS).

"Schema-valid request rejected" (ST202) is a finding when the refusal is one a schema could
have said: `validation-failed` (a length, a format, a range, a field unknown) must be in the
OpenAPI document. Other 422 problem types are refusals no schema can say, because they depend
on the database or on meaning (`unknown-name`: a state, queue, agent or ticket number nobody
has; `invalid-change`; a rule that does not compile …), and are left aside. So is a made-up
`cursor`: a list's cursor is opaque, only one the API gave out continues a list, and
schemathesis cannot make one (validation-failed, field `cursor`).
"""

from __future__ import annotations

from typing import Any

import schemathesis

SCHEMA_SAYS = "/api/v1/problems#validation-failed"


@schemathesis.hook
def filter_failure(context: Any, failure: Any, case: Any, response: Any) -> bool:
    """Keep a failure unless it is one of the refusals above."""
    if failure.code != "ST202" or response.status_code != 422:
        return True
    try:
        problem = response.json()
    except ValueError:
        return True
    if problem.get("type") != SCHEMA_SAYS:
        return False
    errors = problem.get("errors") or []
    return not errors or any(e.get("field") != "cursor" for e in errors)
