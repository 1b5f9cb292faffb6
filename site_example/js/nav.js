// The small-screen menu: the toggle button shows and hides the navigation list.
import { $ } from "./util.js";

export function initNav() {
  const button = $(".nav-toggle");
  const nav = $("#site-nav");
  if (!button || !nav) return;
  button.addEventListener("click", () => {
    const open = nav.classList.toggle("open");
    button.setAttribute("aria-expanded", String(open));
  });
}
