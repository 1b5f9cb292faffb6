// "What this visit got": each resource of this page and how it arrived, from the browser's own
// Resource Timing entries.  Nothing is sent anywhere; the page reads what the browser recorded.
import { $ } from "./util.js";

// A resource a 103 Early Hints response made the browser fetch has initiatorType "early-hints"
// (Chromium); one served from the HTTP cache transferred 0 bytes.  Server push has no trace
// here: browsers refuse it (see the legend), so there is nothing to find.
export function howItCame(entry) {
  if (entry.initiatorType === "early-hints") return "hinted";
  if (entry.transferSize === 0 && entry.decodedBodySize > 0) return "cached";
  return "fetched";
}

const ms = (value) => `${Math.round(value)} ms`;

// The body's size as sent (compressed, if it was).  Not transferSize: Chromium reports 0 for a
// hinted resource as for a cached one.
function size(entry) {
  const n = entry.encodedBodySize;
  if (!n) return "–";
  return n < 10240 ? `${n} B` : `${(n / 1024).toFixed(0)} KiB`;
}

function cell(text, className) {
  const td = document.createElement("td");
  if (className) td.className = className;
  td.textContent = text;
  return td;
}

function row(entry) {
  const how = howItCame(entry);
  const url = new URL(entry.name);
  const tr = document.createElement("tr");
  const tag = document.createElement("span");
  tag.className = `tag ${how}`;
  tag.textContent = how;
  const howCell = cell("");
  howCell.append(tag);
  tr.append(
    cell(url.origin === location.origin ? url.pathname + url.search : entry.name),
    howCell,
    cell(entry.nextHopProtocol || "–"),
    cell(ms(entry.startTime), "num"),
    cell(ms(entry.duration), "num"),
    cell(size(entry), "num"),
  );
  return tr;
}

function summary(entries) {
  const [nav] = performance.getEntriesByType("navigation");
  const counts = { hinted: 0, cached: 0, fetched: 0 };
  for (const entry of entries) counts[howItCame(entry)] += 1;
  const parts = [];
  if (nav) {
    parts.push(`This page came over ${nav.nextHopProtocol || "an unknown protocol"}`);
    // firstInterimResponseStart: when a 1xx (here the 103) arrived; 0 when none did.
    if (nav.firstInterimResponseStart > 0) {
      // finalResponseHeadersStart: the 200's headers (responseStart is the 103's there).
      const page = nav.finalResponseHeadersStart || nav.responseStart;
      parts.push(`a 103 Early Hints response arrived at ${ms(nav.firstInterimResponseStart)}, ` +
                 `the page itself at ${ms(page)}`);
    } else {
      parts.push(`its response started at ${ms(nav.responseStart)}, with no 103 Early Hints this time ` +
                 "(pushserve announces only what this browser has not had yet, and learns an app " +
                 "page's resources from its first response)");
    }
  }
  parts.push(`${entries.length} resources: ${counts.hinted} hinted, ${counts.cached} cached, ` +
             `${counts.fetched} fetched, 0 pushed`);
  return parts.join("; ") + ".";
}

export function initVisit() {
  const rows = $("[data-visit-rows]");
  const text = $("[data-visit-summary]");
  if (!rows || !text || !("PerformanceObserver" in window)) return;
  const entries = [];
  let queued = false;
  const render = () => {
    queued = false;
    entries.sort((a, b) => a.startTime - b.startTime);
    rows.replaceChildren(...entries.map(row));
    text.textContent = summary(entries);
  };
  // buffered: the entries recorded before this module ran come first, later ones (lazy
  // images, fetches) as they finish.
  new PerformanceObserver((list) => {
    // pushserve's own requests are not part of the page: the Speculation Rules set, and dev
    // mode's live-reload stream (which never finishes loading).
    entries.push(...list.getEntries().filter((e) => !new URL(e.name).pathname.startsWith("/_pushserve/")));
    if (!queued) { queued = true; requestAnimationFrame(render); }
  }).observe({ type: "resource", buffered: true });
}
