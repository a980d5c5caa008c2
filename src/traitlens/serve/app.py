"""The playground's HTTP face: one page and a JSON API (FastAPI), the page's only back end.

Errors are one-line JSON messages with a 4xx status (``{"error": "..."}``); nothing is written
for a refused request, and the server keeps serving.
"""

from __future__ import annotations

import json
from importlib import resources
from typing import Any

from fastapi import FastAPI, Request
from fastapi.responses import HTMLResponse, JSONResponse, StreamingResponse
from starlette.concurrency import run_in_threadpool

from traitlens.errors import TraitlensError
from traitlens.serve.session import Busy, Playground

__all__ = ["create_app"]


def _page() -> str:
    return (resources.files("traitlens.serve") / "page.html").read_text(encoding="utf-8")


def create_app(playground: Playground) -> FastAPI:
    app = FastAPI(title="traitlens playground")

    @app.exception_handler(TraitlensError)
    async def _bad_input(request: Request, exc: TraitlensError):
        return JSONResponse({"error": str(exc)}, status_code=400)

    @app.exception_handler(Busy)
    async def _busy(request: Request, exc: Busy):
        return JSONResponse({"error": str(exc)}, status_code=429)

    async def body(request: Request) -> dict[str, Any]:
        try:
            data = json.loads(await request.body() or b"null")
        except (json.JSONDecodeError, UnicodeDecodeError) as exc:
            raise TraitlensError(f"malformed JSON ({exc})") from None
        if not isinstance(data, dict):
            raise TraitlensError("the request body must be a JSON object")
        return data

    @app.get("/", response_class=HTMLResponse)
    def page() -> str:
        return _page()

    @app.get("/api/health")
    def health() -> dict:
        return playground.health()

    @app.get("/api/config")
    def config() -> dict:
        return {**playground.health(), "sliders": playground.sliders(), "probe": playground.probe_curves()}

    @app.post("/api/generate")
    async def generate(request: Request):
        data = await body(request)
        # Model work runs in the thread pool; the playground's lock serialises it.
        return await run_in_threadpool(
            playground.generate, data.get("prompt"), data.get("mix", {}), data.get("max_new_tokens", 48)
        )

    @app.get("/api/stream")
    def stream(prompt: str = "", mix: str = "{}", max_new_tokens: int = 48):
        try:
            parsed = json.loads(mix)
        except json.JSONDecodeError as exc:
            raise TraitlensError(f"mix is malformed JSON ({exc})") from None
        events = playground.stream(prompt, parsed, max_new_tokens)
        first = next(events)  # bad input fails here, as a 4xx, before the stream opens

        def sse():
            try:
                yield f"data: {json.dumps(first)}\n\n"
                for event in events:
                    yield f"data: {json.dumps(event)}\n\n"
            finally:
                events.close()  # a client gone mid-stream ends the model work at once

        return StreamingResponse(sse(), media_type="text/event-stream")

    @app.post("/api/assess")
    async def assess(request: Request):
        data = await body(request)
        return await run_in_threadpool(playground.assess, data.get("mix", {}))

    @app.get("/api/progress")
    def progress() -> dict:
        return dict(playground.progress)

    @app.post("/api/save")
    async def save(request: Request):
        data = await body(request)
        path = playground.save(data.get("mix", {}), data.get("name"))
        return {"saved": str(path), "use": f"traitlens assess --vector {path}"}

    return app
