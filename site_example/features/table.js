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

function applyFilter(tbody, needle) {
  let shown = 0;
  for (const tr of $$("tr", tbody)) {
    tr.hidden = needle !== "" && !tr.textContent.toLowerCase().includes(needle);
    if (!tr.hidden) shown += 1;
  }
  const none = $("[data-no-match]");
  if (none) none.hidden = shown > 0;
}

const tbody = $("[data-rows]");
const input = $("[data-filter]");
if (tbody) {
  const refilter = () => applyFilter(tbody, input ? input.value.trim().toLowerCase() : "");
  input?.addEventListener("input", refilter);
  loadRows(tbody).then(refilter, () => { /* keep the rows rendered on the server */ });
}
