"""Process-level helpers beneath the stages: how a task waits, how much big mail a process holds,
how freed memory goes back to the system.

Nothing here knows about mail, tickets or the database: `waiting` (one timed wait on an event,
for every idle loop), `big_messages` (the process-wide bound on big mail in flight, shared by
the SMTP/LMTP sessions and the workers), `allocator` (glibc's mmap threshold, pinned at
start), `services` (supervision and each service's state), `systemd` and `watchdog` (the
notify protocol: READY, STATUS, WATCHDOG pings) and `logs` (the stderr handler, text or JSON).
Stages import these; these import nothing of pytrs but the ground floor.
"""
