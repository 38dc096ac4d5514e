"""The scheduler role (SPEC S9): escalation events, pending reminders and auto-close.

`clock` runs the jobs inside the daemon (APScheduler 3.x); `due_scan` fires what is due, each
event once across daemons; `notifications` composes the mail to agents; `rebuild` recomputes
the open tickets' clocks after a change of targets, SLAs or calendars.
"""
