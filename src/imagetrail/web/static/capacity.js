// Capacity per version: p50/p95 CPU and memory per container for each version a workload ran.
"use strict";

(function () {
  const IT = window.IT;
  const DEFAULT_SINCE = "30d";
  const result = document.getElementById("result");
  let ctl = null;

  function setup(status, page) {
    ctl = IT.filters(document.getElementById("controls"), status, {
      range: true, defaultSince: DEFAULT_SINCE, onChange: (c) => page.update(c),
    });
  }

  function sync(state) {
    ctl.set(state);
  }

  const cores = (v) => (v === null ? "—" : Math.round(v * 1000) + "m");
  const mib = (v) => (v === null ? "—" : Math.round(v / 1048576) + " Mi");

  // No workload yet: the workloads that ran more than one version in the range (most versions
  // first), each a link that opens its capacity, so the page shows rows without a name known.
  async function picker(state, signal) {
    const changes = await IT.api("/api/v1/changes", IT.apiParams(state, DEFAULT_SINCE), signal);
    const found = new Map();
    for (const c of changes) {
      if (!c.from_image || !c.to_image) continue;
      const id = IT.workloadId(c);
      const seen = found.get(id) || { id, changes: 0, versions: new Set() };
      seen.changes += 1;
      // A re-pushed tag is another version: the digest tells them apart.
      seen.versions.add(c.from_image + "@" + (c.from_digest || ""))
        .add(c.to_image + "@" + (c.to_digest || ""));
      found.set(id, seen);
    }
    const picks = [...found.values()].sort((a, b) => b.versions.size - a.versions.size ||
      b.changes - a.changes ||
      (a.id < b.id ? -1 : a.id > b.id ? 1 : 0)).slice(0, 40);
    IT.clear(result);
    if (!picks.length) {
      result.append(IT.el("p", { class: "empty", id: "empty", text: "No workload changed " +
        "version in this range: type one (namespace/name) in the Workload field." }));
      return;
    }
    const range = IT.rangeParams(state, DEFAULT_SINCE);
    const href = (id) => {
      const p = new URLSearchParams(range);
      p.set("workload", id);
      return "/capacity?" + p;
    };
    result.append(IT.el("p", { class: "summary", id: "pick-hint" },
      IT.el("strong", { text: "Pick a workload" }),
      " to compare what its versions cost — these ran more than one version in this range, " +
      "most versions first (or type one in the Workload field):"),
      IT.el("ul", { class: "picks", id: "capacity-picks" }, picks.map((w) => IT.el("li", {},
        IT.el("a", { href: href(w.id), class: "wl-link", text: w.id }), " ",
        IT.el("span", { class: "muted nowrap", text: w.versions.size + " versions" })))));
  }

  async function render(state, signal) {
    IT.clear(result);
    if (!state.workload) {
      await picker(state, signal);
      return;
    }
    const rows = await IT.api("/api/v1/capacity", IT.apiParams(state, DEFAULT_SINCE), signal);
    if (!rows.length) {
      result.append(IT.el("p", { class: "empty", id: "empty", text: "No versions in range." }));
      return;
    }
    const label = (r) => IT.plotText(r.container + " · " + IT.splitRef(r.image)[1]);
    const chart = IT.el("div", { class: "chart", id: "capacity-chart" });
    result.append(chart);
    const t = IT.chartTheme();
    const bars = (name, key, axis, color, scale) => ({
      type: "bar", name, x: rows.map(label), y: rows.map((r) => (r[key] === null ? null :
        r[key] * scale)), xaxis: "x" + axis, yaxis: "y" + axis, marker: { color },
      hovertemplate: "%{x}<br>" + name + ": %{y:.3g}<extra></extra>",
    });
    window.Plotly.newPlot(chart, [
      bars("CPU p50 (cores)", "cpu_p50", "", IT.PALETTE[0], 1),
      bars("CPU p95 (cores)", "cpu_p95", "", IT.PALETTE[4], 1),
      bars("memory p50 (MiB)", "memory_p50", "2", IT.PALETTE[1], 1 / 1048576),
      bars("memory p95 (MiB)", "memory_p95", "2", IT.PALETTE[5], 1 / 1048576),
    ], IT.baseLayout({ height: 320, barmode: "group",
      grid: { rows: 1, columns: 2, pattern: "independent" },
      yaxis: { title: { text: "cores" }, gridcolor: t.grid },
      yaxis2: { title: { text: "MiB" }, gridcolor: t.grid },
      xaxis: { type: "category" }, xaxis2: { type: "category" },
      margin: { l: 50, r: 10, t: 10, b: 80 }, legend: { orientation: "h" } }), IT.plotConfig);
    const table = IT.el("table", { class: "data capacity", id: "capacity-table" },
      IT.el("thead", {}, IT.el("tr", {}, ["Container", "Version", "From", "To", "CPU p50",
        "CPU p95", "Memory p50", "Memory p95", "Samples"].map(
        (h) => IT.el("th", { scope: "col", text: h })))),
      IT.el("tbody", {}, rows.map((r) => IT.el("tr", {},
        IT.el("td", { text: r.container }),
        IT.el("td", { class: "version" }, IT.imageCode(r.image, {
          title: r.image + (r.digest ? "@" + r.digest : "") })),
        IT.el("td", { class: "when", text: IT.time(r.first_seen) }),
        IT.el("td", { class: "when", text: IT.time(r.last_seen) }),
        IT.el("td", { text: cores(r.cpu_p50) }),
        IT.el("td", { text: cores(r.cpu_p95) }),
        IT.el("td", { text: mib(r.memory_p50) }),
        IT.el("td", { text: mib(r.memory_p95) }),
        IT.el("td", { text: String(r.samples) })))));
    result.append(IT.el("div", { class: "scroll" }, table));
  }

  IT.page({ spec: IT.COMMON, setup, sync, render, result });
})();
