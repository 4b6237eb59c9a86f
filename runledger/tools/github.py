"""``github__create_issue_comment``: comment on a GitHub issue or pull request as the run's owner,
through the ``github`` connection the run's grant maps (``tools.connected``).

POST ``{api_base}/repos/{owner}/{repo}/issues/{issue_number}/comments`` with the connection's token
(``api_base`` from the connection, default ``https://api.github.com``; GitHub Enterprise and the
tests' local fake set their own). A 401 gets one refreshed credential; 4xx/5xx fail the call.
"""

from __future__ import annotations

from typing import Any

import httpx

from runledger.tools import connected

DEFAULT_API_BASE = "https://api.github.com"
PROVIDER = "github"
TIMEOUT_SECONDS = 20.0


async def _post(
    client: httpx.AsyncClient, cred: connected.Credential, args: dict[str, Any]
) -> httpx.Response:
    base = (cred.api_base or DEFAULT_API_BASE).rstrip("/")
    path = f"/repos/{args['owner']}/{args['repo']}/issues/{args['issue_number']}/comments"
    return await client.post(
        base + path,
        json={"body": args["body"]},
        headers={
            "Authorization": f"Bearer {cred.token}",
            "Accept": "application/vnd.github+json",
            "X-GitHub-Api-Version": "2022-11-28",
            "User-Agent": "runledger",
        },
    )


async def create_issue_comment(args: dict[str, Any]) -> dict[str, Any]:
    cred = await connected.credential(PROVIDER)
    async with httpx.AsyncClient(timeout=TIMEOUT_SECONDS) as client:
        resp = await _post(client, cred, args)
        if resp.status_code == 401:
            resp = await _post(client, await connected.rejected(cred), args)
            if resp.status_code == 401:
                raise connected.ConnectionNeedsReauth("GitHub rejected the refreshed credential")
    if resp.status_code != 201:
        raise RuntimeError(f"GitHub answered {resp.status_code}: {resp.text[:300]}")
    comment = resp.json()
    return {"comment_id": int(comment["id"]), "html_url": str(comment.get("html_url") or "")}
