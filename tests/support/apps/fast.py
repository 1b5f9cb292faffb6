"""A FastAPI app: typed path and query parameters, a body, the framework's own 404/422."""

from __future__ import annotations

import hashlib

from fastapi import FastAPI, Request

app = FastAPI()


@app.get("/json")
async def json_route() -> dict[str, str]:
    return {"framework": "fastapi"}


@app.get("/items/{item_id}", name="item")
async def item(item_id: int, request: Request, q: str | None = None) -> dict[str, object]:
    return {"id": item_id, "q": q, "url": str(request.url_for("item", item_id=item_id)),
            "root_path": request.scope["root_path"], "path": request.scope["path"]}


@app.post("/echo")
async def echo(request: Request) -> dict[str, object]:
    body = await request.body()
    return {"sha256": hashlib.sha256(body).hexdigest(), "length": len(body)}
