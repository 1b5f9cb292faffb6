"""A Quart app that asks for server push with ``make_push_promise``: a site file and one of its
own routes."""

from __future__ import annotations

from quart import Quart, make_push_promise, url_for

app = Quart(__name__)


@app.route("/page")
async def page() -> str:
    await make_push_promise("/css/site.css")
    await make_push_promise(url_for("data"))
    return "<!doctype html><title>quart</title><p>pushed css and data</p>"


@app.route("/data")
async def data() -> dict[str, object]:
    return {"source": "quart", "pushed_ok": True}
