"""The ASGI 3 adapter: load.py imports the apps, mount.py runs one (lifespan, routes it learned),
request.py carries one request between the app and the exchange."""
