// A terminal's page: charts of its telemetry history (uPlot), command results, config state
// and events, refreshed by server-sent events.
"use strict";
(() => {
  const charts = document.getElementById("charts");
  const deviceId = charts.dataset.device;
  const rangeSelect = document.getElementById("range");
  const series = [
    ["fps", "Frame rate", "frames/s"], ["embed_p95", "Embedding p95", "ms"],
    ["detect_p95", "Detection p95", "ms"], ["approved_per_min", "Approvals", "per min"],
    ["liveness_per_min", "Liveness refusals", "per min"],
    ["declined_per_min", "Declines", "per min"], ["outbox_depth", "Outbox", "rows"],
    ["cpu_temp_c", "CPU temperature", "°C"],
  ].map(([key, label, unit]) => [key, blink.t(label), blink.t(unit)]);
  const plots = {};
  let fetchedAt = 0;

  function summary(label, unit, xs, ys) {
    const have = ys.filter((v) => v !== null && v !== undefined);
    if (have.length === 0) return blink.t("{label}: no data in this range.", { label });
    const f = (v) => blink.num(v, 2) + " " + unit;
    return blink.t(
      "{label}: {n} points from {first} to {last}; lowest {low}, highest {high}, latest {latest}.",
      { label, n: have.length, first: blink.when(xs[0]), last: blink.when(xs[xs.length - 1]),
        low: f(Math.min(...have)), high: f(Math.max(...have)), latest: f(have[have.length - 1]) });
  }

  function chart(key, label, unit, points) {
    const xs = points.map((p) => p.ts);
    const ys = points.map((p) => p[key]);
    let entry = plots[key];
    if (!entry) {
      const figure = document.createElement("figure");
      figure.className = "chart";
      figure.id = "chart-" + key;
      const box = document.createElement("div");
      box.setAttribute("role", "img");
      box.setAttribute("aria-label", label + " (" + unit + ")");
      const caption = document.createElement("figcaption");
      figure.append(box, caption);
      charts.appendChild(figure);
      const width = Math.max(220, Math.min(320, charts.clientWidth - 16));
      const plot = new uPlot({
        width: width, height: 150, title: label + " (" + unit + ")",
        tzDate: (ts) => uPlot.tzDate(new Date(ts * 1e3), blink.tz),
        scales: { x: { time: true } },
        axes: [{
          // 24-hour times in the site's zone (with the date when the range spans days)
          values: (u, splits) => {
            const span = splits.length > 1 ? splits[splits.length - 1] - splits[0] : 0;
            return splits.map((v) => (span > 86400 ? blink.when(v).slice(5, 16)
              : blink.when(v).slice(11, 16)));
          },
        }, { label: unit, size: 50 }],
        series: [{ label: blink.tz }, {
          label: unit, stroke: "#2563eb", width: 1.5, spanGaps: false,
          value: (u, v) => (v === null || v === undefined ? "-" : blink.num(v, 2) + " " + unit),
        }],
      }, [xs, ys], box);
      entry = plots[key] = { plot, caption };
    } else {
      entry.plot.setData([xs, ys]);
    }
    entry.caption.textContent = summary(label, unit, xs, ys);
  }

  async function load() {
    fetchedAt = Date.now();
    const url = "/api/devices/" + encodeURIComponent(deviceId) + "/history?range="
      + encodeURIComponent(rangeSelect.value);
    const response = await fetch(url, { credentials: "same-origin" });
    if (!response.ok) return;
    const data = await response.json();
    document.getElementById("resolution").textContent = blink.t(
      data.resolution === "raw" ? "{n} points, every report, {tz}"
        : "{n} points, per-minute averages, {tz}", { n: data.points.length, tz: blink.tz });
    series.forEach(([key, label, unit]) => chart(key, label, unit, data.points));
  }
  rangeSelect.addEventListener("change", load);
  load();

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
    health.textContent = d.health_label;
    health.className = "health " + d.health;
    document.getElementById("health-reason").textContent = d.health_reason;
    const broker = document.getElementById("broker");
    broker.className = "broker " + (d.broker.up ? "up" : "down");
    broker.textContent = blink.t(d.broker.up ? "Console's broker link: up" : "Console's broker link: DOWN");
    document.getElementById("last-seen").textContent = blink.when(d.last_seen);
    document.getElementById("shard-version").textContent = blink.show(d.shard_version);
    document.getElementById("shard-lag").textContent = blink.show(d.shard_lag);
    const cs = d.config_state;
    document.getElementById("config-state").textContent = cs
      ? blink.t("version {version}: {status}", { version: cs.version, status: blink.t(cs.status) })
        + (cs.reason ? " (" + cs.reason + ")" : "")
      : blink.t("none yet");
    const results = document.querySelector("#results tbody");
    const labels = [...document.querySelectorAll("#results thead th")].map((th) => th.textContent);
    results.replaceChildren(...d.commands.map((c) => {
      const tr = document.createElement("tr");
      tr.dataset.request = c.request_id;
      tr.dataset.status = c.status;
      const status = blink.t(c.status) + (c.status === "pending"
        ? " (" + blink.t("waits until {when}", { when: blink.when(c.expires_at) }) + ")" : "")
        + ((c.deliveries || 0) > 1 ? " (" + blink.t("sent {n} times", { n: c.deliveries }) + ")" : "");
      [["Sent", blink.when(c.created_at)], ["Command", blink.t(c.name)], ["By", c.operator],
        ["Status", status, "cmd " + c.status], ["Result", c.detail ? blink.t(c.detail) : ""]].forEach(([, text, cls], i) => {
        blink.cell(tr, text, cls).dataset.label = labels[i];
      });
      return tr;
    }));
    rows(document.querySelector("#configs tbody"), d.configs, (c) =>
      [c.version, blink.when(c.sent_at), c.operator, c.config,
        blink.t(c.status) + (c.reason ? ": " + c.reason : "")]);
    const refused = document.querySelector("#refusals tbody");
    const refusedRows = d.refused_shown.map((r) => {
      const tr = document.createElement("tr");
      blink.cell(tr, "").appendChild(blink.coded(r));
      blink.cell(tr, String(r.n), "amount");
      return tr;
    });
    if (!refusedRows.length) {
      refusedRows.push(document.createElement("tr"));
      blink.cell(refusedRows[0], blink.t("none refused"));
    }
    refused.replaceChildren(...refusedRows);
    const events = document.querySelector("#events tbody");
    events.replaceChildren(...d.events.map((e) => {
      const tr = document.createElement("tr");
      blink.cell(tr, blink.when(e.ts));
      blink.cell(tr, "").appendChild(blink.coded(e.shown.type));
      const outcome = blink.cell(tr, "");
      if (e.shown.outcome) outcome.appendChild(blink.coded(e.shown.outcome));
      const reasons = document.createElement("span");
      reasons.className = "coded-list";
      reasons.append(...e.shown.reasons.map(blink.coded));
      blink.cell(tr, "").appendChild(reasons);
      blink.cell(tr, e.amount === undefined ? "" : blink.money(e.amount, charts.dataset.currency));
      return tr;
    }));
    if (Date.now() - fetchedAt > 5000) load();  // charts follow, at most every 5 s
  }

  blink.live("/events/devices/" + encodeURIComponent(deviceId), update, null);
})();
