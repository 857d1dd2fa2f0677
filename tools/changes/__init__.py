"""The changes source: deploys, config and flag changes, model and index swaps, manual operations.

Three feeds, merged: a JSON-lines file, a webhook that CI/CD posts to (kept in SQLite, so nothing
posted is lost across restarts), and the GitHub Deployments API.

- ``records``: a change as a record, change files and the webhook's store;
- ``webhook``: the HTTP endpoint CI posts to; ``github``: GitHub deployments as a feed;
- ``config``: ``changes:`` in sleuth.yml and every configured feed read at once;
- ``source``: the source as the registry lists it (gathering and the ``list_changes`` tool);
- ``guidance.md``: what the model is told about the tool.
"""

from tools.changes.config import ChangesConfig, gather_changes
from tools.changes.github import GitHubConfig, GitHubDeployments, GitHubRepo
from tools.changes.records import KINDS, Change, ChangeStore, change_from_dict, read_change_file
from tools.changes.webhook import MAX_CHANGES_PER_POST, WebhookConfig, make_webhook_server

__all__ = ["KINDS", "MAX_CHANGES_PER_POST", "Change", "ChangeStore", "ChangesConfig", "GitHubConfig",
           "GitHubDeployments", "GitHubRepo", "WebhookConfig", "change_from_dict", "gather_changes",
           "make_webhook_server", "read_change_file"]
