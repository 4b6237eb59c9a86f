"""A local fake of the two GitHub endpoints the github tool reaches: the REST API's issue comments and
an OAuth2 token endpoint (refresh grant). Real HTTP on a loopback port, like the fake model
provider; it records what it was sent so a test can check which token was used."""

from __future__ import annotations

import base64
import secrets
import threading
from dataclasses import dataclass, field
from typing import Any

from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse

from tests.fakes.loopback import LoopbackServer

CLIENT_ID = "Iv1.fakeclient"
CLIENT_SECRET = "fake-client-secret-0123456789"


@dataclass
class GitHubLog:
    #: Access tokens the API accepts; refresh tokens the token endpoint accepts (one use each).
    access_tokens: set[str] = field(default_factory=set)
    refresh_tokens: set[str] = field(default_factory=set)
    comments: list[dict[str, Any]] = field(default_factory=list)
    refreshes: list[dict[str, str]] = field(default_factory=list)
    lock: threading.Lock = field(default_factory=threading.Lock)

    def issue_pair(self) -> tuple[str, str]:
        access, refresh = f"gho_{secrets.token_hex(16)}", f"ghr_{secrets.token_hex(16)}"
        with self.lock:
            self.access_tokens.add(access)
            self.refresh_tokens.add(refresh)
        return access, refresh


def build_app(log: GitHubLog) -> FastAPI:
    app = FastAPI()

    @app.post("/repos/{owner}/{repo}/issues/{number}/comments")
    async def comment(owner: str, repo: str, number: int, request: Request) -> Any:
        token = request.headers.get("authorization", "").removeprefix("Bearer ")
        if token not in log.access_tokens:
            return JSONResponse({"message": "Bad credentials"}, status_code=401)
        body = await request.json()
        with log.lock:
            comment_id = len(log.comments) + 1
            log.comments.append(
                {"owner": owner, "repo": repo, "number": number, "body": body["body"], "token": token}
            )
        return JSONResponse(
            {
                "id": comment_id,
                "html_url": f"https://github.test/{owner}/{repo}/issues/{number}#c{comment_id}",
            },
            status_code=201,
        )

    @app.post("/login/oauth/access_token")
    async def token(request: Request) -> Any:
        form = await request.form()
        basic = request.headers.get("authorization", "").removeprefix("Basic ")
        client = base64.b64decode(basic).decode() if basic else ""
        refresh = str(form.get("refresh_token", ""))
        with log.lock:
            log.refreshes.append({"grant_type": str(form.get("grant_type", "")), "client": client})
            ok = client == f"{CLIENT_ID}:{CLIENT_SECRET}" and refresh in log.refresh_tokens
            if ok:
                log.refresh_tokens.discard(refresh)
        if form.get("grant_type") != "refresh_token" or not ok:
            return JSONResponse(
                {"error": "invalid_grant", "error_description": "bad refresh token"}, status_code=400
            )
        access, new_refresh = log.issue_pair()
        return {
            "access_token": access,
            "refresh_token": new_refresh,
            "token_type": "bearer",
            "expires_in": 28800,
        }

    return app


class FakeGitHub(LoopbackServer):
    name = "fake GitHub"

    def __init__(self) -> None:
        self.log = GitHubLog()
        super().__init__(build_app(self.log))
        self.url = self.base_url
        self.token_url = f"{self.url}/login/oauth/access_token"
