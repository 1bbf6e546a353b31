"""The bodies of the CLI's commands other than `run` (harness/cli.py only parses and dispatches)."""
