"""The live-reload client injected into pages in dev mode (kept as a string so it ships inside the
Python package with no data-file setup).

It listens to ``/_pushserve/events`` with ``EventSource`` (server-sent events: plain HTTP/2 over
TLS, no WebSocket) and reacts to:

- ``hello {id}``        the server instance; a different id after a reconnect means the server was
                        restarted (new code), so the page reloads;
- ``change {kind, paths, sheets}``  ``reload``: reload the page; ``css``/``image``: swap the
                        ``sheets`` (changed stylesheets and those importing them) and the images
                        in ``paths`` in place (new URL, same element position, no reload, scroll
                        kept);
- ``error {title, problems, html}`` / ``clear``  show / remove the error overlay (``html`` is
                        drawn as it is: site/error_page.py renders it).

EventSource reconnects by itself (``retry:`` from the server sets the pace); when the browser gives
up (the server answered something else than an event stream), a new one is made a second later.
"""

from __future__ import annotations

CLIENT_JS = r"""
(() => {
  if (window.__pushserveDev) return;
  // Also tells tools (and tests) whether the event stream is open and which server it reached.
  const state = window.__pushserveDev = {connected: false, instance: null};
  const OVERLAY = "pushserve-overlay";
  let instance = null;

  const sameOrigin = (u) => u.origin === location.origin;
  const bust = (href) => {
    const u = new URL(href, location.href);
    u.searchParams.set("_pushserve", Date.now().toString(36));
    return u.href;
  };

  // Swap each stylesheet named (the changed ones and those that @import them, as the server found
  // them): a new URL for the <link>, so the browser fetches it, and with it its imports (dev mode
  // serves everything no-cache, so those are revalidated and an edited one arrives).
  function swapStylesheets(paths) {
    const links = [...document.querySelectorAll('link[rel~="stylesheet"][href]')];
    let hit = links.filter((l) => paths.includes(new URL(l.href, location.href).pathname));
    // None linked here (an @import from an inline <style>, a sheet the server does not know): renew
    // every local one.
    if (!hit.length) hit = links.filter((l) => sameOrigin(new URL(l.href, location.href)));
    for (const old of hit) {
      const next = old.cloneNode();
      next.href = bust(old.href);
      // The old sheet stays until the new one applies, so the page never shows unstyled.
      next.onload = next.onerror = () => old.remove();
      old.after(next);
    }
  }

  function swapImages(path) {
    let found = false;
    for (const el of document.querySelectorAll("img[src], link[rel~='icon'][href]")) {
      const attr = el.tagName === "IMG" ? "src" : "href";
      if (new URL(el[attr], location.href).pathname === path) {
        el[attr] = bust(el[attr]);
        found = true;
      }
    }
    if (!found) swapStylesheets([]);  // a CSS background, most likely: renew them all
  }

  // The overlay is the server's HTML (the same as a dev-mode 500 page, which is nothing but the
  // overlay): one box, opaque, its content replaced on each error event.
  function showError(d) {
    const tpl = document.createElement("template");
    tpl.innerHTML = d.html;
    const next = tpl.content.firstElementChild;
    if (!next) return;
    const old = document.getElementById(OVERLAY);
    if (old) {
      old.innerHTML = next.innerHTML;  // the same box, new content (kept: scripts may hold it)
    } else {
      (document.body || document.documentElement).appendChild(next);
    }
  }

  function clearError() {
    // A 500 page is the overlay: it stays until the reload that follows the fix replaces it.
    const box = document.getElementById(OVERLAY);
    if (box && !box.dataset.page) box.remove();
  }

  function connect() {
    const es = new EventSource("/_pushserve/events");
    es.addEventListener("hello", (e) => {
      const id = JSON.parse(e.data).id;
      if (instance !== null && instance !== id) location.reload();
      instance = state.instance = id;
      state.connected = true;
    });
    es.addEventListener("change", (e) => {
      const d = JSON.parse(e.data);
      if (d.kind === "reload") location.reload();  // no-cache: every file is revalidated
      if (d.kind === "reload" || d.kind === "restart") return;  // restart: the new server's hello reloads
      if (d.sheets && d.sheets.length) swapStylesheets(d.sheets);
      for (const p of d.paths) if (!p.toLowerCase().endsWith(".css")) swapImages(p);
    });
    es.addEventListener("error", (e) => { if (e.data) showError(JSON.parse(e.data)); });
    es.addEventListener("clear", clearError);
    es.onerror = () => {
      state.connected = false;
      if (es.readyState === EventSource.CLOSED) setTimeout(connect, 1000);
    };
  }
  connect();
})();
"""
