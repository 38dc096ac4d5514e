"""Keys the configuration names, read and checked for length: the loop-marker key.

Place in the flow: whoever signs or checks with the key asks here (``responders.marker`` for
the X-PyTRS-Loop marker, ``authentication.reply_token`` when reply tokens share that key,
``preflight`` at start), so each reports a missing, unreadable or short key in the same words,
naming the key.
"""

from __future__ import annotations

from pytrs.config.errors import ConfigError
from pytrs.config.model import OutboundConfig

# Shorter HMAC keys are refused wherever pytrs signs something.
MIN_SECRET_BYTES = 16


def loop_secret_from_config(outbound: OutboundConfig) -> bytes:
    """The marker key from ``[outbound] loop_secret`` / ``loop_secret_file``.

    Raises ConfigError naming the key when it is missing, unreadable or too short: pytrs must
    not send mail it could not recognise when it comes back.
    """
    try:
        secret = outbound.resolve_loop_secret()
    except OSError as exc:
        raise ConfigError(f"outbound.loop_secret_file: cannot read: {exc}") from exc
    if not secret:
        raise ConfigError(
            "outbound.loop_secret_file: required to send mail (the key of the X-PyTRS-Loop "
            "marker); e.g. `head -c 32 /dev/urandom | base64 > /etc/pytrs/loop.key`, or set "
            "PYTRS_OUTBOUND_LOOP_SECRET"
        )
    if len(secret) < MIN_SECRET_BYTES:
        key = "loop_secret_file" if outbound.loop_secret_file else "loop_secret"
        raise ConfigError(f"outbound.{key}: must be at least {MIN_SECRET_BYTES} bytes")
    return secret
