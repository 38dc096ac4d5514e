"""Configuration: one TOML file (SPEC S3) → frozen dataclasses, passed explicitly.

Place in the flow: read once at start by the command line (``load_config``), then handed to
each service's constructor; there is no global configuration object and nothing is read at
import time. The modules, in the order a file goes through them:

- ``load``: find the file (``--config``, ``$PYTRS_CONFIG``, ``./pytrs.toml``, defaults), read TOML;
- ``environ``: apply ``PYTRS_<SECTION>_<KEY>`` overrides;
- ``expand``: ``$NAME``/``${NAME}`` in ``*_file`` paths (``${CREDENTIALS_DIRECTORY}``);
- ``parse``: check keys, types and per-field rules, build the ``model`` dataclasses;
- ``crosscheck``: references to queues, duplicates, conflicting keys;
- ``errors``: ``ConfigError``, which lists every problem at once, each naming its dotted key.

``listen_address`` parses the ``host:port`` / unix socket strings for the services.
"""

from pytrs.config.errors import ConfigError
from pytrs.config.listen import listen_address
from pytrs.config.load import load_config
from pytrs.config.model import (
    BUILTIN_QUEUES,
    AgentConfig,
    AgentMailConfig,
    AuthenticationConfig,
    AutoResponseConfig,
    Config,
    DaemonConfig,
    DatabaseConfig,
    DkimKeyConfig,
    LoopProtectionConfig,
    MailAccountConfig,
    OutboundConfig,
    PostmasterConfig,
    QueueConfig,
    SmtpConfig,
    SystemAddressConfig,
    TicketConfig,
    WebConfig,
)
from pytrs.config.parse import parse_config

__all__ = [
    "BUILTIN_QUEUES",
    "AgentConfig",
    "AgentMailConfig",
    "AuthenticationConfig",
    "AutoResponseConfig",
    "Config",
    "ConfigError",
    "DaemonConfig",
    "DatabaseConfig",
    "DkimKeyConfig",
    "LoopProtectionConfig",
    "MailAccountConfig",
    "OutboundConfig",
    "PostmasterConfig",
    "QueueConfig",
    "SmtpConfig",
    "SystemAddressConfig",
    "TicketConfig",
    "WebConfig",
    "listen_address",
    "load_config",
    "parse_config",
]
