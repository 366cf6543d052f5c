// Small helpers shared by the console's pages (no framework, no CDN).
"use strict";
const blink = {
  messages: JSON.parse((document.getElementById("i18n") || {}).textContent || "{}"),
  // The page's translation of a message, with {name} arguments filled in.
  t(message, args) {
    const text = blink.messages[message] || message;
    return text.replace(/\{(\w+)\}/g, (m, k) => (args && k in args ? String(args[k]) : m));
  },
  tz: document.documentElement.dataset.tz || "UTC",
  // A time in the site's time zone (as the server writes it: 2026-12-06 11:24:00 CST).
  when(ts) {
    if (ts === null || ts === undefined) return "-";
    const parts = {};
    new Intl.DateTimeFormat("en-GB", {
      timeZone: blink.tz, year: "numeric", month: "2-digit", day: "2-digit", hour: "2-digit",
      minute: "2-digit", second: "2-digit", hourCycle: "h23", timeZoneName: "short",
    }).formatToParts(new Date(ts * 1000)).forEach((p) => { parts[p.type] = p.value; });
    return parts.year + "-" + parts.month + "-" + parts.day + " " + parts.hour + ":"
      + parts.minute + ":" + parts.second + " " + parts.timeZoneName;
  },
  // "12 s ago", "5 min ago", "3 h ago", "2 d ago" (the server's clock, `now`).
  ago(ts, now) {
    if (ts === null || ts === undefined) return "-";
    const s = Math.max(0, (now || Date.now() / 1000) - ts);
    if (s < 60) return Math.round(s) + " " + blink.t("s ago");
    if (s < 3600) return Math.round(s / 60) + " " + blink.t("min ago");
    if (s < 86400) return Math.round(s / 3600) + " " + blink.t("h ago");
    return Math.round(s / 86400) + " " + blink.t("d ago");
  },
  // A number with at most `digits` decimals, grouped for reading.
  num(v, digits) {
    if (v === null || v === undefined) return "-";
    return Number(v).toLocaleString(document.documentElement.lang || "en",
      { maximumFractionDigits: digits === undefined ? 2 : digits });
  },
  // Minor units as money in the page's language, e.g. 250 EUR -> "€2.50".
  money(minor, currency) {
    if (minor === null || minor === undefined) return "-";
    const lang = document.documentElement.lang || "en";
    const fmt = new Intl.NumberFormat(lang, { style: "currency", currency: currency || "EUR" });
    const digits = fmt.resolvedOptions().maximumFractionDigits;
    return fmt.format(minor / 10 ** digits);
  },
  // POST a form and take its JSON answer (any status: the API answers refusals in JSON).
  // Anything else, a login page after the session ended, a proxy's error page, is an Error
  // the page can show, never a line left stale.
  async postForm(url, body, csrf) {
    const response = await fetch(url, {
      method: "POST", body, headers: { "X-CSRF-Token": csrf }, credentials: "same-origin",
    });
    if (!(response.headers.get("content-type") || "").includes("application/json")) {
      throw new Error(blink.t("the console did not answer ({status}): reload the page or log in again",
        { status: response.status }));
    }
    return response.json();
  },
  show(v) { return v === null || v === undefined ? "-" : String(v); },
  pairs(obj, fmt) {
    return Object.entries(obj || {}).map(([k, v]) => k + " " + (fmt ? fmt(v) : v)).join(" ");
  },
  // A code in words ({code, label} from the server, in the page's language), the code in
  // small type beside it (as the templates' `label` filter writes it); a code without words
  // (a newer terminal's) as it is.
  coded(item) {
    const span = document.createElement("span");
    span.className = "coded";
    span.dataset.code = item.code;
    const code = document.createElement("code");
    code.textContent = item.code;
    if (item.label && item.label !== item.code) {
      const small = document.createElement("small");
      small.appendChild(code);
      span.append(item.label, " ", small);
    } else {
      span.appendChild(code);
    }
    return span;
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
    source.onopen = () => { if (statusEl) statusEl.textContent = blink.t("live updates: on"); };
    source.onerror = () => {
      if (statusEl) statusEl.textContent = blink.t("live updates: reconnecting…");
    };
    source.onmessage = (e) => onData(JSON.parse(e.data));
    // the session ended (logout, expiry, a disabled operator): no reconnecting, log in again
    source.addEventListener("session-ended", () => {
      source.close();
      window.location.assign("/login?expired=1");
    });
    return source;
  },
};
