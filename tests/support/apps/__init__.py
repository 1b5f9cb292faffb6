"""ASGI apps the integration tests mount in a real pushserve process (Starlette, FastAPI, Quart
and plain ASGI).  Each records what happened to it (disconnects, streams ending) in memory and
exposes that through a route, since it runs in the server process, not in the test's."""
