"""ConfigError and the collector that gathers every problem before raising it.

Place in the flow: used while loading configuration, before any service starts. We report all
problems at once so that an operator fixes a file in one round instead of one error per start.
"""

from collections.abc import Iterable


class ConfigError(Exception):
    """The configuration is unusable; ``errors`` lists each problem, naming the dotted key."""

    def __init__(self, errors: str | Iterable[str], source: str = "") -> None:
        self.errors: list[str] = [errors] if isinstance(errors, str) else list(errors)
        self.source = source
        # Keeping the constructor arguments in args lets the exception survive pickling.
        super().__init__(self.errors, source)

    def __str__(self) -> str:
        where = f" in {self.source}" if self.source else ""
        if len(self.errors) == 1:
            # Errors about the file itself (syntax, unreadable) already start with its name.
            if self.source and self.errors[0].startswith(f"{self.source}:"):
                where = ""
            return f"invalid configuration{where}: {self.errors[0]}"
        listed = "".join(f"\n  {error}" for error in self.errors)
        return f"{len(self.errors)} configuration errors{where}:{listed}"


class ErrorList:
    """Collects ``"dotted.key: message"`` strings while a configuration is parsed.

    ``origins`` maps a dotted key to the environment variable that set it, so that an error in
    an overridden value points at the variable rather than at a file that does not contain it.
    """

    def __init__(self) -> None:
        self.messages: list[str] = []
        self.origins: dict[str, str] = {}

    def add(self, key: str, message: str) -> None:
        # An item of an overridden list ("smtp.listen[1]") comes from the list's variable too.
        origin = self.origins.get(key) or self.origins.get(key.split("[", 1)[0])
        where = f"{key} (from {origin})" if origin else key
        self.messages.append(f"{where}: {message}")

    def raise_if_any(self, source: str = "") -> None:
        if self.messages:
            raise ConfigError(self.messages, source)


def dotted(*parts: str | int) -> str:
    """Join key parts into ``a.b[2].c`` form, the way errors name keys."""
    out = ""
    for part in parts:
        if isinstance(part, int):
            out += f"[{part}]"
        elif part:
            out = f"{out}.{part}" if out else part
    return out
