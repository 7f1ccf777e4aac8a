// Versions at an instant: table and bars; workloads running more than one version highlighted.
"use strict";

(function () {
  const IT = window.IT;
  const SPEC = { cluster: "list", namespace: "list", workload: "string", at: "string" };
  const result = document.getElementById("result");
  let ctl = null;
  let last = null;

  function setup(status, page) {
    ctl = IT.filters(document.getElementById("controls"), status, {
      at: true, onChange: (c) => page.update(c),
    });
  }

  function sync(state) {
    ctl.set(state);
  }

  // Workload containers running more than one version at the instant, keyed by workload id.
  function mixedWorkloads(workloads) {
    const mixed = new Map();
    for (const w of workloads) {
      if ((w.images || []).length > 1) {
        const id = IT.workloadId(w);
        const list = mixed.get(id) || [];
        list.push(w);
        mixed.set(id, list);
      }
    }
    return mixed;
  }

  async function render(state, signal) {
    const rows = await IT.api("/api/v1/versions",
      IT.apiParams(state, null, { at: state.at }), signal);
    const at = rows.length ? rows[0].at : state.at;
    // /workloads at the very instant the versions answer used, so both describe one moment.
    const workloads = await IT.api("/api/v1/workloads",
      IT.apiParams(state, null, { at }), signal);
    last = { rows, at, mixed: mixedWorkloads(workloads) };
    draw(last);
  }

  function draw({ rows, at, mixed }) {
    if (window.Plotly) for (const p of result.querySelectorAll(".plot")) window.Plotly.purge(p);
    IT.clear(result);
    if (!rows.length) {
      result.append(IT.el("p", { class: "empty", id: "empty",
        text: "No container ran at " + (at ? IT.time(at) : "this instant") +
          " with these filters." }));
      return;
    }
    const total = rows.reduce((a, r) => a + r.containers, 0);
    result.append(IT.el("p", { class: "summary", id: "summary" },
      IT.el("strong", { text: rows.length + (rows.length === 1 ? " version" : " versions") }),
      ", " + total + " containers at " + IT.time(at)));

    if (mixed.size) {
      const list = IT.el("ul", { class: "mixed-list", id: "mixed" });
      for (const [id, conts] of mixed) {
        for (const w of conts) {
          list.append(IT.el("li", {}, IT.workloadLink(id, {}),
            " container ", IT.el("code", { text: w.container }), " runs ",
            w.images.map((img, i) => [i ? " and " : "",
              IT.el("code", { class: "image", text: img })])));
        }
      }
      result.append(IT.el("div", { class: "callout warn" },
        IT.el("strong", { text: mixed.size +
          (mixed.size === 1 ? " workload runs" : " workloads run") + " more than one version" }),
        " (a rollout in progress, or stuck):", list));
    }

    const seen = new Set();
    const labels = rows.map((r) => {
      let label = r.image;
      if (seen.has(label)) label += " @" + IT.shortDigest(r.digest);
      while (seen.has(label)) label += "·";
      seen.add(label);
      return label;
    });
    const isMixed = rows.map((r) => r.workloads.some((w) => mixed.has(w)));
    const plot = IT.el("div", { id: "bars", class: "plot", role: "img",
      "aria-label": "Containers per version" });
    result.append(plot);
    const theme = IT.chartTheme();
    window.Plotly.newPlot(plot, [{
      type: "bar",
      orientation: "h",
      y: rows.map((_, i) => i),
      x: rows.map((r) => r.containers),
      marker: {
        color: isMixed.map((m) => (m ? theme.warn : theme.accent)),
        pattern: { shape: isMixed.map((m) => (m ? "/" : "")) },
      },
      text: labels.map((l) => IT.plotText(l)),
      customdata: rows.map((r) => IT.plotText(IT.shortDigest(r.digest) || "no digest") +
        "<br>" + IT.plotText(r.workloads.length + " workloads")),
      hovertemplate: "<b>%{text}</b><br>%{customdata}<br>%{x} containers<extra></extra>",
      textposition: "none",
    }], IT.baseLayout({
      height: Math.max(220, rows.length * 22 + 70),
      xaxis: { title: { text: "containers" }, gridcolor: theme.grid, fixedrange: true },
      yaxis: { tickmode: "array", tickvals: rows.map((_, i) => i),
        ticktext: labels.map((l) => IT.plotText(l)), autorange: "reversed", zeroline: false,
        automargin: true,
        fixedrange: true, tickfont: { family: "ui-monospace, SFMono-Regular, Menlo, monospace",
          size: 11 } },
      bargap: 0.25,
    }), Object.assign({}, IT.plotConfig, { displayModeBar: false }));

    const table = IT.el("table", { class: "data", id: "versions-table" },
      IT.el("caption", { class: "sr", text: "Image versions at " + IT.time(at) }),
      IT.el("thead", {}, IT.el("tr", {}, ["Image", "Digest", "Containers", "Workloads"].map(
        (h) => IT.el("th", { scope: "col", text: h })))),
      IT.el("tbody", {}, rows.map((r, i) => IT.el("tr", { class: isMixed[i] ? "mixed" : null },
        IT.el("td", { class: "image" }, IT.el("code", { text: r.image }),
          isMixed[i] ? IT.el("span", { class: "badge warn", text: "mixed",
            title: "a workload here runs more than one version" }) : null),
        IT.el("td", { class: "mono", title: r.digest || "",
          text: IT.shortDigest(r.digest) || "—" }),
        IT.el("td", { class: "num", text: r.containers }),
        IT.el("td", { class: "workloads" }, r.workloads.map((w) => IT.el("span",
          { class: mixed.has(w) ? "wl mixed" : "wl" }, IT.workloadLink(w, {}),
          mixed.has(w) ? IT.el("span", { class: "badge warn", text: "several versions" })
            : null)))))));
    result.append(IT.el("div", { class: "scroll" }, table));
  }

  IT.page({
    spec: SPEC, setup, sync, render, result,
    recolor: () => {
      if (last) draw(last);
    },
  });
})();
