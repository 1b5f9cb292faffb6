// Fills the feature table from data/features.json (preloaded by the page) and filters it.
import { $, $$ } from "../js/util.js";

async function loadRows(tbody) {
  const response = await fetch("../data/features.json");
  if (!response.ok) return;
  const rows = await response.json();
  tbody.replaceChildren(...rows.map(({ name, text }) => {
    const tr = document.createElement("tr");
    for (const value of [name, text]) {
      const td = document.createElement("td");
      td.textContent = value;
      tr.append(td);
    }
    return tr;
  }));
}

function initFilter(tbody) {
  const input = $("[data-filter]");
  if (!input) return;
  input.addEventListener("input", () => {
    const needle = input.value.trim().toLowerCase();
    for (const tr of $$("tr", tbody)) tr.hidden = needle !== "" && !tr.textContent.toLowerCase().includes(needle);
  });
}

const tbody = $("[data-rows]");
if (tbody) {
  initFilter(tbody);
  loadRows(tbody).catch(() => { /* keep the rows rendered on the server */ });
}
