"""The Slack adapter: a Bolt app over the agent and the incident store (the core never imports slack_bolt)."""
