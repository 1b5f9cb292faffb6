// Entry module of every page: menu, theme toggle, protocol badge, copy buttons, visit panel.
import { initNav } from "./nav.js";
import { $, $$, pageProtocol, storage } from "./util.js";
import { initVisit } from "./visit.js";

const darkQuery = matchMedia("(prefers-color-scheme: dark)");

// The theme follows the system until the button pins one (remembered in localStorage).
function currentTheme() {
  return document.documentElement.dataset.theme || (darkQuery.matches ? "dark" : "light");
}

function applyTheme(theme) {
  if (theme) document.documentElement.dataset.theme = theme;
  const toggle = $("[data-theme-toggle]");
  if (toggle) {
    const dark = currentTheme() === "dark";
    toggle.setAttribute("aria-pressed", String(dark));
    toggle.textContent = dark ? "Light theme" : "Dark theme";
  }
}

function initTheme() {
  applyTheme(storage.get("theme"));
  darkQuery.addEventListener("change", () => applyTheme(null));
  $("[data-theme-toggle]")?.addEventListener("click", () => {
    const next = currentTheme() === "dark" ? "light" : "dark";
    storage.set("theme", next);
    applyTheme(next);
  });
}

function showProtocol() {
  const badge = $("[data-protocol]");
  if (badge) badge.textContent = pageProtocol() === "h2" ? "HTTP/2" : pageProtocol().toUpperCase();
}

function initCopyButtons() {
  for (const button of $$("[data-copy]")) {
    button.addEventListener("click", async () => {
      // Loaded only when needed: a dynamic import, so it is not part of the push manifest.
      const { copyText } = await import("./clipboard.js");
      const source = $(button.dataset.copy);
      button.textContent = (await copyText(source ? source.textContent : "")) ? "Copied" : "Copy failed";
      setTimeout(() => { button.textContent = "Copy"; }, 2000);
    });
  }
}

initNav();
initTheme();
initCopyButtons();
initVisit();
if (document.readyState === "complete") showProtocol();
else addEventListener("load", showProtocol);
