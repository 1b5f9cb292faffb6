// Small DOM helpers shared by the page scripts.

export const $ = (selector, root = document) => root.querySelector(selector);
export const $$ = (selector, root = document) => Array.from(root.querySelectorAll(selector));

// Remembers a preference; private browsing may refuse storage, which is not an error here.
export const storage = {
  get(key) {
    try { return localStorage.getItem(key); } catch { return null; }
  },
  set(key, value) {
    try { localStorage.setItem(key, value); } catch { /* ignore */ }
  },
};

// The protocol the page itself arrived over ("h2", "http/1.1"), as the browser reports it.
export function pageProtocol() {
  const [nav] = performance.getEntriesByType("navigation");
  return nav && nav.nextHopProtocol ? nav.nextHopProtocol : "unknown";
}
