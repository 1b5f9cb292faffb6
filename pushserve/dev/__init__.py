"""Dev mode: live reload over server-sent events, CSS and images swapped in place, template and
manifest errors shown in the page, and the ``/_pushserve/`` overview.

- classify.py   raw file changes → one Batch, each path with its kind (pure)
- watch.py      the watchfiles loop
- update.py     caches, push manifest and template checks brought up to date
- sse.py        the ``/_pushserve/events`` server-sent-event stream and its subscribers
- mount.py      DevServer: the mounted ``/_pushserve`` routes; owns the rest
- inject.py / client.py  the script put into pages (the wiring hands it to the site as a page filter)
"""
