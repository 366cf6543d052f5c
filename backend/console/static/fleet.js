// The fleet table: rows pushed by server-sent events, sorted by a header click, filtered by site.
"use strict";
(() => {
  const table = document.getElementById("fleet");
  const body = table.tBodies[0];
  const filter = document.getElementById("site-filter");
  let rows = [];
  let sortKey = "device_id";
  let sortDir = 1;

  function render() {
    const site = filter.value;
    const shown = rows.filter((r) => !site || r.site === site);
    shown.sort((a, b) => {
      const x = a[sortKey], y = b[sortKey];
      if (x === y) return 0;
      if (x === null || x === undefined) return 1;
      if (y === null || y === undefined) return -1;
      return (x < y ? -1 : 1) * sortDir;
    });
    body.replaceChildren(...shown.map(row));
    const empty = document.getElementById("empty");
    if (empty) empty.hidden = rows.length > 0;
    const known = new Set([...filter.options].map((o) => o.value));
    rows.forEach((r) => {
      if (r.site && !known.has(r.site)) { filter.add(new Option(r.site)); known.add(r.site); }
    });
  }

  function row(r) {
    const tr = document.createElement("tr");
    tr.dataset.device = r.device_id;
    tr.dataset.site = r.site || "";
    const link = document.createElement("a");
    link.href = "/devices/" + encodeURIComponent(r.device_id);
    link.textContent = r.device_id;
    blink.cell(tr, "").appendChild(link);
    blink.cell(tr, r.state, "state " + r.state);
    blink.cell(tr, blink.show(r.site));
    blink.cell(tr, blink.when(r.last_seen));
    blink.cell(tr, blink.show(r.software));
    blink.cell(tr, blink.show(r.shard_version));
    blink.cell(tr, blink.show(r.shard_lag));
    blink.cell(tr, blink.show(r.outbox_depth));
    blink.cell(tr, blink.show(r.fps));
    blink.cell(tr, blink.pairs(r.latency_ms, (v) => v.p50 + "/" + v.p95));
    blink.cell(tr, blink.pairs(r.decisions));
    blink.cell(tr, blink.show(r.liveness_rejections));
    blink.cell(tr, blink.pairs(r.rejected));
    blink.cell(tr, blink.show(r.cpu_temp_c));
    blink.cell(tr, r.alerts.join(", "), "alerts");
    return tr;
  }

  table.tHead.addEventListener("click", (e) => {
    const key = e.target.dataset && e.target.dataset.key;
    if (!key) return;
    sortDir = key === sortKey ? -sortDir : 1;
    sortKey = key;
    render();
  });
  filter.addEventListener("change", render);
  blink.live("/events/fleet", (data) => { rows = data; render(); }, document.getElementById("live"));
})();
