"""Answers: what pytrs says back, and the mail it composes to say it.

Auto-responses chosen per queue and type (`responses`, `response_toml`) and rendered from
sandboxed templates (`templates`, `sandbox`, `template_limits`), loop protection deciding
whether an answer may go at all (`loop_protection`, `marker`), and the composer that turns a
draft into a MIME mail threaded onto the ticket (`message`, `mime`, `quoting`).
"""
