"""The incident domain, outside any chat adapter: incidents and their timelines kept in SQLite or
PostgreSQL (store.py), who may do what to an incident (roles.py), and the rollups, summaries and
memory records drafted from them (reports.py). Slack (bot/slack) says them in Block Kit; the alert
intake and the CLI use the same functions. The claimed-work table that makes Slack events and
alerts run exactly once lives in the same store today (store.py, "claimed work")."""
