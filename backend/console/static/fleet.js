// The fleet: the console's broker link, counts per health, and one row per terminal (problems
// first), pushed by server-sent events; sorted by a header (click or Enter), filtered by site
// and searched by id.
"use strict";
(() => {
  const table = document.getElementById("fleet");
  const body = table.tBodies[0];
  const filter = document.getElementById("site-filter");
  const search = document.getElementById("search");
  const ORDER = { fault: 0, out_of_service: 1, offline: 2, stale: 3, degraded: 4, ok: 5 };
  let snap = { terminals: [], broker: { up: true }, counts: {} };
  const labels = [...table.tHead.rows[0].cells].map((th) => th.textContent);
  const PAGE = 50;
  let page = 0;
  let sortKey = "health";
  let sortDir = 1;

  function value(r, key) {
    if (key === "health") return ORDER[r.health] ?? 9;
    if (key === "p95") return r.latency_ms && r.latency_ms.embed ? r.latency_ms.embed.p95 : null;
    return r[key];
  }

  function render() {
    const site = filter.value;
    const needle = search.value.trim().toLowerCase();
    const shown = snap.terminals.filter((r) =>
      (!site || r.site === site) && (!needle || r.device_id.toLowerCase().includes(needle)));
    shown.sort((a, b) => {
      const x = value(a, sortKey), y = value(b, sortKey);
      if (x === y) return a.device_id < b.device_id ? -1 : 1;
      if (x === null || x === undefined) return 1;
      if (y === null || y === undefined) return -1;
      return (x < y ? -1 : 1) * sortDir;
    });
    const pages = Math.max(1, Math.ceil(shown.length / PAGE));
    page = Math.min(page, pages - 1);
    body.replaceChildren(...shown.slice(page * PAGE, (page + 1) * PAGE).map((r) => row(r, snap.now)));
    document.getElementById("fleet-page").textContent = blink.t("Page {page} of {pages}",
      { page: page + 1, pages }) + " · " + blink.t("terminals shown: {n}", { n: shown.length });
    document.getElementById("fleet-prev").disabled = page === 0;
    document.getElementById("fleet-next").disabled = page >= pages - 1;
    const empty = document.getElementById("empty");
    if (empty) empty.hidden = snap.terminals.length > 0;
    const known = new Set([...filter.options].map((o) => o.value));
    snap.terminals.forEach((r) => {
      if (r.site && !known.has(r.site)) { filter.add(new Option(r.site)); known.add(r.site); }
    });
    const broker = document.getElementById("broker");
    broker.className = "broker " + (snap.broker.up ? "up" : "down");
    broker.textContent = snap.broker.up ? blink.t("Console's broker link: up")
      : blink.t("Console's broker link: DOWN since {since}: no terminal's state is current",
        { since: blink.when(snap.broker.down_since) });
    const counts = document.getElementById("counts");
    counts.replaceChildren(...Object.entries(snap.counts).map(([h, n]) => {
      const li = document.createElement("li");
      li.className = "health " + h;
      li.dataset.health = h;
      const named = snap.terminals.find((r) => r.health === h);
      li.append((named ? named.health_label : h) + " ");
      const b = document.createElement("b");
      b.textContent = n;
      li.appendChild(b);
      return li;
    }));
    [...table.tHead.rows[0].cells].forEach((th) => {
      if (th.dataset.key === sortKey) th.setAttribute("aria-sort", sortDir > 0 ? "ascending" : "descending");
      else th.removeAttribute("aria-sort");
    });
  }

  function row(r, now) {
    const tr = document.createElement("tr");
    tr.dataset.device = r.device_id;
    tr.dataset.site = r.site || "";
    tr.dataset.health = r.health;
    let column = 0;
    const cell = (_name, text, cls) => {
      const td = blink.cell(tr, text, cls);
      td.dataset.label = labels[column++];
      return td;
    };
    const link = document.createElement("a");
    link.href = "/devices/" + encodeURIComponent(r.device_id);
    link.textContent = r.device_id;
    cell("Terminal", "").appendChild(link);
    const h = cell("Health", r.health_label, "health " + r.health);
    h.title = r.health_reason || "";
    if (r.health_reason) {
      const why = document.createElement("small");
      why.className = "why";
      why.textContent = r.health_reason;
      h.appendChild(why);
    }
    cell("Site", blink.show(r.site));
    cell("Last seen", blink.ago(r.last_seen, now)).title = blink.when(r.last_seen);
    cell("Software", blink.show(r.software) + (r.model ? " · " + r.model : ""));
    cell("Shard", r.shard_version === null || r.shard_version === undefined ? "-"
      : "v" + r.shard_version + (r.shard_lag ? " (" + r.shard_lag + " " + blink.t("behind") + ")" : ""));
    cell("Outbox", blink.show(r.outbox_depth));
    cell("FPS", blink.num(r.fps, 1));
    const p95 = value(r, "p95");
    cell("Embed p95", p95 === null || p95 === undefined ? "-" : blink.num(p95, 1) + " ms");
    cell("Today", r.today
      ? blink.t("{n} approved, {m} refused", { n: r.today.approved, m: r.today.refused }) : "-");
    const tx = r.last_tx;
    const last = cell("Last tx", tx ? blink.money(tx.amount, snap.currency) + " " : "-");
    if (tx) last.append(blink.coded(tx.status_shown), ", " + blink.ago(tx.received_at, now));
    cell("CPU", r.cpu_temp_c === null || r.cpu_temp_c === undefined ? "-" : blink.num(r.cpu_temp_c, 1) + " °C");
    return tr;
  }

  function sortBy(th) {
    const key = th.dataset.key;
    if (!key) return;
    sortDir = key === sortKey ? -sortDir : 1;
    sortKey = key;
    render();
  }
  [...table.tHead.rows[0].cells].forEach((th) => {
    if (!th.dataset.key) return;
    th.tabIndex = 0;
    th.addEventListener("click", () => sortBy(th));
    th.addEventListener("keydown", (e) => {
      if (e.key === "Enter" || e.key === " ") { e.preventDefault(); sortBy(th); }
    });
  });
  filter.addEventListener("change", () => { page = 0; render(); });
  search.addEventListener("input", () => { page = 0; render(); });
  document.getElementById("fleet-prev").addEventListener("click", () => { page -= 1; render(); });
  document.getElementById("fleet-next").addEventListener("click", () => { page += 1; render(); });
  blink.live("/events/fleet", (data) => { snap = data; render(); }, document.getElementById("live"));
})();
