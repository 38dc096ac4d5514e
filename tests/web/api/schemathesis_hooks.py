"""schemathesis hooks for test_schemathesis.py (loaded through SCHEMATHESIS_HOOKS).

"Schema-valid request rejected" (ST202) is not a finding when what refused the request is
something no schema can say, because it depends on the database:

- a list's `cursor` is opaque: only a cursor the API gave out continues a list, any other is
  refused (422 validation-failed, field `cursor`), and schemathesis cannot make one;
- a name the database does not know (422 `unknown-name`: a state, queue, agent, ticket number
  to merge into …) or a change the ticket's current state does not allow (422
  `invalid-change`).

Every other failure is kept, and so is every ST202 whose problem a schema could have said
(a length, a format, a range: `validation-failed`).
"""

from __future__ import annotations

from typing import Any

import schemathesis

DATABASE_REFUSALS = ("/api/v1/problems#unknown-name", "/api/v1/problems#invalid-change")


@schemathesis.hook
def filter_failure(context: Any, failure: Any, case: Any, response: Any) -> bool:
    """Keep a failure unless it is one of the refusals above."""
    if failure.code != "ST202" or response.status_code != 422:
        return True
    try:
        problem = response.json()
    except ValueError:
        return True
    if problem.get("type") in DATABASE_REFUSALS:
        return False
    errors = problem.get("errors") or []
    return not errors or any(e.get("field") != "cursor" for e in errors)
