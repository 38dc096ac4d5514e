"""Diagnostics: what `pytrs doctor` checks on an installed pytrs, one module per family.

Place in the flow: outside it. Nothing here handles mail; each check looks at what the daemon
will need (its configuration, database, files, DNS records, relay, mailboxes and listening
addresses) the way the daemon itself would use it, and answers with `Finding`s: OK, WARN or
FAIL, what was found, and what to do. `runner.run_checks` runs them concurrently under one
deadline each; `pytrs.commands.doctor` only prints.
"""
