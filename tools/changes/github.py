"""GitHub deployments as a change feed."""

from __future__ import annotations


from pydantic import BaseModel, Field

from tools.http import HttpSourceConfig, SourceError, decode_json, make_client, request
from tools.timeparse import parse_time


from tools.changes.records import KINDS, Change


class GitHubRepo(BaseModel):
    model_config = {"extra": "forbid"}

    repo: str = Field(..., pattern=r"^[\w.-]+/[\w.-]+$", description="owner/name")
    service: str
    environment: str | None = "production"


class GitHubConfig(HttpSourceConfig):
    url: str = "https://api.github.com"
    token: str | None = None
    web_url: str = "https://github.com"
    repos: list[GitHubRepo] = Field(default_factory=list)
    max_pages: int = Field(5, ge=1, le=50, description="pages of 100 deployments read per repo, at most")


class GitHubDeployments:
    def __init__(self, config: GitHubConfig) -> None:
        headers = {"Accept": "application/vnd.github+json", "X-GitHub-Api-Version": "2022-11-28", **config.headers}
        if config.token:
            headers["Authorization"] = f"Bearer {config.token}"
        self.config = config
        self.client = make_client(config.model_copy(update={"headers": headers}))

    async def between(self, start: float, end: float) -> list[Change]:
        out = []
        unreadable = 0
        for repo in self.config.repos:
            items = await self._deployments(repo, start)
            for item in items:
                ts = parse_time(item.get("created_at"))
                if ts is None or not (start <= ts <= end):
                    continue
                change = self._change(repo, item, ts)
                if change is None:
                    unreadable += 1
                else:
                    out.append(change)
        if unreadable and not out:
            raise SourceError(f"GitHub answered {unreadable} deployment{'s' if unreadable > 1 else ''} "
                              "in a shape Sleuth cannot read (no id, sha or ref as text)")
        return out

    def _change(self, repo: GitHubRepo, item: dict, ts: float) -> Change | None:
        """One deployment as a change; None when its fields are not what GitHub documents."""
        fields = ("id", "sha", "ref", "description", "environment")
        if any(isinstance(item.get(k), (dict, list)) for k in fields) or item.get("id") is None:
            return None
        sha = str(item.get("sha") or "")
        ref = str(item.get("ref") or sha[:7])
        payload = item.get("payload")
        payload = payload if isinstance(payload, dict) else {}
        creator = item.get("creator")
        creator = creator if isinstance(creator, dict) else {}
        kind = payload.get("kind")
        return Change(
            id=f"gh-{item.get('id')}",
            ts=ts,
            service=repo.service,
            kind=kind if isinstance(kind, str) and kind in KINDS else "deploy",
            summary=str(item.get("description") or f"{repo.repo} {ref} to {item.get('environment')}"),
            author=str(creator.get("login") or ""),
            version=ref,
            url=f"{self.config.web_url.rstrip('/')}/{repo.repo}/commit/{sha}" if sha else "",
            source="github",
        )

    async def _deployments(self, repo: GitHubRepo, start: float) -> list[dict]:
        """Deployments newest first, following ``Link: rel="next"`` until they predate ``start``."""
        first: dict[str, str] = {"per_page": "100"}
        if repo.environment:
            first["environment"] = repo.environment
        params: dict[str, str] | None = first
        url = f"/repos/{repo.repo}/deployments"
        items: list[dict] = []
        for _ in range(self.config.max_pages):
            response = await request(self.client, self.config, "GitHub", "GET", url, params=params)
            page = decode_json(response, "GitHub")
            if not isinstance(page, list):
                raise SourceError("GitHub answered the deployments list with something other than a list")
            items.extend(i for i in page if isinstance(i, dict))
            oldest = min((parse_time(i.get("created_at")) or 0.0 for i in page if isinstance(i, dict)), default=0.0)
            following = response.links.get("next", {}).get("url")
            if not page or not following or oldest < start:
                break
            url, params = following, None  # the next link carries its own query
        return items

    async def aclose(self) -> None:
        await self.client.aclose()
