"""Headless subcommands; each module here is one ``samdesk SUBCOMMAND`` (see samdesk.cli)."""
