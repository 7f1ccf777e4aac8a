// The fleet heatmap: image × time → running containers, with filters, zoom and drill-down.
"use strict";

(function () {
  const IT = window.IT;
  const DEFAULT_SINCE = "7d";
  const SPEC = Object.assign({}, IT.COMMON,
    { sandbox: "string", digests: "string", order: "string", image: "string" });
  const MAX_HOVER_WORKLOADS = 8;

  const result = document.getElementById("result");
  const detail = document.getElementById("detail");
  let ctl = null;
  let toggles = null;
  let page = null;
  let answer = null; // the last heatmap answer drawn
  let drawnState = null;

  function setup(status, p) {
    page = p;
    ctl = IT.filters(document.getElementById("controls"), status, {
      range: true, defaultSince: DEFAULT_SINCE, onChange: (c) => page.update(c),
    });
    const sandbox = IT.el("input", { type: "checkbox", id: "t-sandbox" });
    const digests = IT.el("input", { type: "checkbox", id: "t-digests" });
    const order = IT.el("select", { id: "t-order" },
      IT.el("option", { value: "", text: "versions of a repository together" }),
      IT.el("option", { value: "busy", text: "busiest first" }));
    const rowPick = IT.el("select", { id: "t-row" });
    toggles = { sandbox, digests, order, rowPick };
    ctl.form.append(IT.el("div", { class: "field toggles" },
      IT.el("label", { class: "check" }, sandbox, " Hide pod sandbox (pause)"),
      IT.el("label", { class: "check" }, digests, " One row per digest"),
      IT.el("span", { class: "inline" },
        IT.el("label", { for: "t-order", text: "Order rows: " }), order)));
    sandbox.addEventListener("change", () =>
      page.update({ sandbox: sandbox.checked ? "" : "true", image: "" }));
    digests.addEventListener("change", () =>
      page.update({ digests: digests.checked ? "true" : "", image: "" }));
    order.addEventListener("change", () => page.update({ order: order.value }));
    // The keyboard way to a row's drill-down (plotly's rows cannot take focus).
    rowPick.addEventListener("change", () => page.update({ image: rowPick.value }));
  }

  function sync(state) {
    ctl.set(state);
    toggles.sandbox.checked = state.sandbox !== "true";
    toggles.digests.checked = state.digests === "true";
    toggles.order.value = state.order === "busy" ? "busy" : "";
  }

  function plotWidth() {
    // The server picks a step so that one column is a few pixels of the drawing area.
    const width = result.clientWidth || 1000;
    return Math.max(100, Math.round(width * 0.65));
  }

  function rowLabel(image, i, seen) {
    let label = image;
    const at = image.indexOf("@sha256:");
    if (at > 0) label = image.slice(0, at) + "@" + IT.shortDigest(image.slice(at + 1));
    while (seen.has(label)) label += " ·" + i; // plotly would merge equal labels
    seen.add(label);
    return label;
  }

  function hoverInfo(hm, i) {
    const wl = hm.workloads[i] || [];
    const dg = (hm.digests && hm.digests[i]) || [];
    const lines = [];
    if (dg.length) {
      lines.push("digest: " + dg.slice(0, 3).map(IT.shortDigest).join(", ") +
        (dg.length > 3 ? ", … " + (dg.length - 3) + " more" : ""));
    }
    lines.push(wl.length + (wl.length === 1 ? " workload:" : " workloads:"));
    for (const w of wl.slice(0, MAX_HOVER_WORKLOADS)) lines.push("  " + w);
    if (wl.length > MAX_HOVER_WORKLOADS) {
      lines.push("  … " + (wl.length - MAX_HOVER_WORKLOADS) + " more");
    }
    return lines.map(IT.plotText).join("<br>");
  }

  function labelMargin(labels) {
    // Monospace 11 px: about 6.7 px per character (entities such as &lt; count as one).
    const chars = Math.max(8, ...labels.map((l) => l.replace(/&[a-z]+;/g, "x").length));
    return Math.min(560, Math.ceil(chars * 6.7) + 16);
  }

  function rowOrder(hm, busy) {
    const idx = hm.images.map((_, i) => i);
    if (!busy) return idx;
    const total = hm.counts.map((row) => row.reduce((a, b) => a + (b || 0), 0));
    return idx.sort((a, b) => total[b] - total[a] || a - b);
  }

  async function render(state, signal) {
    const params = IT.apiParams(state, DEFAULT_SINCE, {
      width: plotWidth(),
      sandbox: state.sandbox === "true" ? "true" : "false",
      digests: state.digests === "true" ? "true" : "false",
    });
    const hm = await IT.api("/api/v1/heatmap", params, signal);
    answer = hm;
    drawnState = state;
    draw(hm, state);
    await showDetail(state, signal);
  }

  function draw(hm, state) {
    if (window.Plotly) window.Plotly.purge(result);
    IT.clear(result);
    const summary = IT.el("p", { class: "summary", id: "summary" },
      IT.el("strong", { text: hm.images.length + (hm.images.length === 1 ? " image" : " images") }),
      " · " + IT.time(hm.from) + " → " + IT.time(hm.to) + " · one column = " +
      IT.duration(hm.step));
    IT.replace(toggles.rowPick,
      IT.el("option", { value: "", text: "— choose an image —" }),
      hm.images.map((img) => IT.el("option", { value: img, text: img })));
    toggles.rowPick.value = state.image || "";
    const picker = IT.el("div", { class: "field inline rowpick" },
      IT.el("label", { for: "t-row", text: "Who ran an image?" }), toggles.rowPick);
    const head = IT.el("div", { class: "summary-row" }, summary, picker);
    if (!hm.images.length) {
      result.append(summary, IT.el("p", { class: "empty", id: "empty",
        text: "No containers match these filters in this time range. Try a longer range, " +
          "fewer filters" + (state.sandbox === "true" ? "." : ", or show pod sandboxes.") }));
      return;
    }
    const order = rowOrder(hm, state.order === "busy");
    const seen = new Set();
    const labels = order.map((i) => IT.plotText(rowLabel(hm.images[i], i, seen)));
    const z = order.map((i) => hm.counts[i].map((c) => (c ? c : null)));
    const info = order.map((i) => hoverInfo(hm, i));
    const custom = order.map((_, r) => hm.times.map(() => info[r]));
    const plot = IT.el("div", { id: "plot", class: "plot", role: "img",
      "aria-label": "Heatmap of " + hm.images.length + " images over time" });
    result.append(head, plot);
    const rows = order.length;
    const theme = IT.chartTheme();
    const trace = {
      type: "heatmap",
      x: hm.times,
      y: order.map((_, r) => r),
      z,
      customdata: custom,
      colorscale: IT.heatScale(),
      zmin: 0, // both bounds, or plotly ignores them: colour 0 is "no container"
      zmax: Math.max(1, ...hm.counts.map((row) => Math.max(0, ...row))),
      hoverongaps: false,
      xgap: 0,
      ygap: 1,
      colorbar: { title: { text: "containers", side: "right" }, thickness: 12, outlinewidth: 0,
        lenmode: "pixels", len: Math.min(320, rows * 20), y: 1, yanchor: "top" },
      // The label is escaped; the tags around it are ours.
      text: order.map((_, r) => hm.times.map(() => "<b>" + labels[r] + "</b>")),
      hovertemplate: "%{text}<br>%{x|%Y-%m-%d %H:%M} UTC: <b>%{z}</b> containers<br>" +
        "%{customdata}<extra></extra>",
    };
    const layout = IT.baseLayout({
      height: Math.max(260, rows * 20 + 60),
      // A left margin sized from the longest label: plotly's automargin measures every tick
      // label and costs seconds with hundreds of rows.
      margin: { l: labelMargin(labels), r: 20, t: 40, b: 10 },
      // Times on top: with many rows the bottom of the chart is below the fold.
      xaxis: { type: "date", range: [hm.from, hm.to], gridcolor: theme.grid, side: "top" },
      yaxis: { tickmode: "array", tickvals: order.map((_, r) => r), ticktext: labels,
        autorange: "reversed", zeroline: false, fixedrange: true, automargin: false, showgrid: false,
        tickfont: { family: "ui-monospace, SFMono-Regular, Menlo, monospace", size: 11 } },
      dragmode: "zoom",
      // The row whose workloads the panel below lists.
      shapes: order.map((i, r) => [i, r]).filter(([i]) => hm.images[i] === state.image)
        .map(([, r]) => ({ type: "rect", xref: "paper", x0: 0, x1: 1, yref: "y", y0: r - 0.5,
          y1: r + 0.5, line: { color: theme.accent, width: 2 }, fillcolor: "rgba(0,0,0,0)" })),
    });
    window.Plotly.newPlot(plot, [trace], layout, IT.plotConfig);
    plot.on("plotly_relayout", (ev) => onZoom(ev));
    plot.on("plotly_click", (ev) => {
      const pt = ev && ev.points && ev.points[0];
      if (!pt) return;
      const row = Array.isArray(pt.pointIndex) ? pt.pointIndex[0] : pt.y;
      const image = hm.images[order[row]];
      if (image !== undefined) page.update({ image });
    });
  }

  function onZoom(ev) {
    let a = ev["xaxis.range[0]"];
    let b = ev["xaxis.range[1]"];
    if (a === undefined && Array.isArray(ev["xaxis.range"])) [a, b] = ev["xaxis.range"];
    if (a === undefined || b === undefined) return; // autosize, autorange: the fetched range
    const from = IT.plotlyDate(a);
    const to = IT.plotlyDate(b);
    if (!from || !to || from >= to) return;
    page.update({ since: "", from, to });
  }

  async function showDetail(state, signal) {
    if (!state.image) {
      detail.hidden = true;
      IT.clear(detail);
      return;
    }
    detail.hidden = false;
    const close = IT.el("button", { type: "button", class: "secondary close", id: "detail-close",
      text: "Close", "aria-label": "Close the list of workloads" });
    close.addEventListener("click", () => page.update({ image: "" }));
    const head = IT.el("div", { class: "detail-head" },
      IT.el("h2", {}, "Who ran ", IT.swatch(state.image),
        IT.el("code", { class: "image", text: state.image })), close);
    IT.replace(detail, head, IT.el("p", { class: "empty", text: "Loading…" }));
    // The very window the heatmap shows, so the list matches the row.
    const params = IT.params(state, ["cluster", "namespace", "workload"]);
    const win = answer ? new URLSearchParams({ from: answer.from, to: answer.to })
      : IT.rangeParams(state, DEFAULT_SINCE);
    for (const [k, v] of win) params.set(k, v);
    params.set("image", state.image);
    const rows = await IT.api("/api/v1/audit", params, signal);
    if (!rows.length) {
      IT.replace(detail, head, IT.el("p", { class: "empty",
        text: "No container ran this image in this range with these filters." }));
      return;
    }
    const linkRange = Object.fromEntries(win);
    const table = IT.el("table", { class: "data", id: "detail-table" },
      IT.el("thead", {}, IT.el("tr", {},
        ["Workload", "Container", "Digest", "First seen", "Last seen", "Max containers"].map(
          (h) => IT.el("th", { scope: "col", text: h })))),
      IT.el("tbody", {}, rows.map((r) => IT.el("tr", {},
        IT.el("td", {}, IT.workloadLink(IT.workloadId(r), linkRange)),
        IT.el("td", { text: r.container }),
        IT.el("td", { class: "mono", title: r.digest || "",
          text: IT.shortDigest(r.digest) || "—" }),
        IT.el("td", { class: "nowrap", text: IT.time(r.first_seen) }),
        IT.el("td", { class: "nowrap", text: IT.time(r.last_seen) }),
        IT.el("td", { class: "num", text: r.containers_max })))));
    IT.replace(detail, head,
      IT.el("p", { class: "summary", text: rows.length + " workload containers ran it" +
        (answer ? ", " + IT.time(answer.from) + " → " + IT.time(answer.to) : "") }),
      IT.el("div", { class: "scroll" }, table));
  }

  IT.page({
    spec: SPEC,
    setup,
    sync,
    render,
    result,
    recolor: () => {
      if (answer && drawnState) draw(answer, drawnState);
    },
  });
})();
