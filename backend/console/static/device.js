// A terminal's page: charts of its telemetry history (uPlot), command results, config state
// and events, refreshed by server-sent events.
"use strict";
(() => {
  const charts = document.getElementById("charts");
  const deviceId = charts.dataset.device;
  const series = [
    ["fps", "frames/s"], ["embed_p95", "embed p95 ms"], ["detect_p95", "detect p95 ms"],
    ["outbox_depth", "outbox depth"], ["liveness_rejections", "liveness refusals"],
    ["cpu_temp_c", "CPU °C"],
  ];
  const plots = {};

  function chart(key, label, history) {
    const data = [history.map((h) => h.ts), history.map((h) => h[key])];
    if (plots[key]) { plots[key].setData(data); return; }
    const box = document.createElement("div");
    box.className = "chart";
    charts.appendChild(box);
    plots[key] = new uPlot({
      width: 300, height: 140, title: label,
      scales: { x: { time: true } }, legend: { show: false },
      series: [{}, { label: label, stroke: "#2563eb", width: 1.5, spanGaps: true }],
    }, data, box);
  }

  function rows(tbody, items, cells) {
    tbody.replaceChildren(...items.map((item) => {
      const tr = document.createElement("tr");
      cells(item).forEach((text) => blink.cell(tr, text));
      return tr;
    }));
  }

  function update(d) {
    if (!d) return;
    const health = document.getElementById("health");
    health.textContent = d.health;
    health.className = "health " + d.health;
    document.getElementById("health-reason").textContent = d.health_reason;
    const broker = document.getElementById("broker");
    broker.className = "broker " + (d.broker.up ? "up" : "down");
    broker.textContent = d.broker.up ? "Console's broker link: up" : "Console's broker link: DOWN";
    document.getElementById("last-seen").textContent = blink.when(d.last_seen);
    document.getElementById("shard-version").textContent = blink.show(d.shard_version);
    document.getElementById("shard-lag").textContent = blink.show(d.shard_lag);
    const cs = d.config_state;
    document.getElementById("config-state").textContent = cs
      ? "version " + cs.version + " " + cs.status + (cs.reason ? ": " + cs.reason : "")
      : "none yet";
    rows(document.querySelector("#results tbody"), d.results, (r) =>
      [r.name, r.request_id.slice(0, 8), r.ok ? "yes" : "no", r.detail]);
    rows(document.querySelector("#configs tbody"), d.configs, (c) =>
      [c.version, blink.when(c.sent_at), c.operator, c.config,
        c.status + (c.reason ? ": " + c.reason : "")]);
    rows(document.querySelector("#events tbody"), d.events, (e) =>
      [blink.when(e.ts), e.type, e.outcome || "", (e.reasons || []).join(", "), blink.show(e.amount)]);
    if (d.history.length > 0) series.forEach(([key, label]) => chart(key, label, d.history));
  }

  blink.live("/events/devices/" + encodeURIComponent(deviceId), update, null);
})();
