"""The incident domain, outside any chat adapter: incidents and their timelines kept in SQLite or
PostgreSQL (store.py, over database.py), who may do what to an incident (roles.py), the rules
every adapter applies to them (service.py), and the rollups, summaries and memory records drafted
out of them (reports.py). Slack (bot/slack) says them in Block Kit; the alert intake and the CLI
use the same functions. The claimed-work table that makes Slack events and alerts run exactly
once belongs to the Slack adapter (bot/slack/claims.py), in the same database."""
