"""Dev mode: live reload over server-sent events, CSS and images swapped in place, template and
manifest errors shown in the page, and the ``/_pushserve/`` overview.

- classify.py   raw file changes → one Batch, each path with its kind (pure)
- watch.py      the watchfiles loop
- update.py     caches, push manifest and template checks brought up to date
- events.py     the ``/_pushserve/events`` stream and its subscribers
- endpoints.py  DevServer: the mounted ``/_pushserve`` routes; owns the rest
- inject.py / client.py  the script put into pages

Import the modules themselves (site/router.py imports inject.py, which must not pull in the
server side).
"""
