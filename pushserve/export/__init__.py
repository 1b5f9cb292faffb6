"""``pushserve export``: the site as plain files plus its headers and hints, for a CDN or for
nginx, h2o and Caddy.  ``site.py`` collects what pushserve would serve (pages rendered, Link
values, Cache-Control, content types); the other modules each write one format from that."""
