// Small helpers shared by the console's pages (no framework, no CDN).
"use strict";
const blink = {
  when(ts) {
    if (ts === null || ts === undefined) return "-";
    return new Date(ts * 1000).toISOString().replace("T", " ").slice(0, 19) + " UTC";
  },
  show(v) { return v === null || v === undefined ? "-" : String(v); },
  pairs(obj, fmt) {
    return Object.entries(obj || {}).map(([k, v]) => k + " " + (fmt ? fmt(v) : v)).join(" ");
  },
  cell(tr, text, cls) {
    const td = document.createElement("td");
    td.textContent = text;
    if (cls) td.className = cls;
    tr.appendChild(td);
    return td;
  },
  // Server-sent events with a status line; the browser reconnects by itself.
  live(url, onData, statusEl) {
    const source = new EventSource(url);
    source.onopen = () => { if (statusEl) statusEl.textContent = "live updates: on"; };
    source.onerror = () => { if (statusEl) statusEl.textContent = "live updates: reconnecting…"; };
    source.onmessage = (e) => onData(JSON.parse(e.data));
    // the session ended (logout, expiry, a disabled operator): no reconnecting, log in again
    source.addEventListener("session-ended", () => {
      source.close();
      window.location.assign("/login?expired=1");
    });
    return source;
  },
};
