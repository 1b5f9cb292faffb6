// Entry module of every page: menu, theme toggle, protocol badge, copy buttons.
import { initNav } from "./nav.js";
import { $, $$, pageProtocol, storage } from "./util.js";

function applyTheme(theme) {
  document.documentElement.dataset.theme = theme;
  const toggle = $("[data-theme-toggle]");
  if (toggle) {
    toggle.setAttribute("aria-pressed", String(theme === "dark"));
    toggle.textContent = theme === "dark" ? "Light theme" : "Dark theme";
  }
}

function initTheme() {
  applyTheme(storage.get("theme") || "light");
  $("[data-theme-toggle]")?.addEventListener("click", () => {
    const next = document.documentElement.dataset.theme === "dark" ? "light" : "dark";
    storage.set("theme", next);
    applyTheme(next);
  });
}

function showProtocol() {
  const badge = $("[data-protocol]");
  if (badge) badge.textContent = pageProtocol() === "h2" ? "HTTP/2" : pageProtocol().toUpperCase();
  const count = $("[data-resource-count]");
  if (count) count.textContent = String(performance.getEntriesByType("resource").length + 1);
}

function initCopyButtons() {
  for (const button of $$("[data-copy]")) {
    button.addEventListener("click", async () => {
      // Loaded only when needed: a dynamic import, so it is not part of the push manifest.
      const { copyText } = await import("./clipboard.js");
      const source = $(button.dataset.copy);
      button.textContent = (await copyText(source ? source.textContent : "")) ? "Copied" : "Copy failed";
    });
  }
}

initNav();
initTheme();
initCopyButtons();
if (document.readyState === "complete") showProtocol();
else addEventListener("load", showProtocol);
