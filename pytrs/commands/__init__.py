"""The larger `pytrs` subcommands, one module each; `pytrs.cli` parses arguments and dispatches."""
