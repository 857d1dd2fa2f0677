"""Sleuth's application layer: configuration, the investigation, scenarios, evaluation and the CLI.

The Slack adapter and the agent graph live here too; nothing under tools/ imports this package.
"""
