// Changes: a filterable table with kind badges and a CSV download of the same rows.
"use strict";

(function () {
  const IT = window.IT;
  const DEFAULT_SINCE = "7d";
  const KINDS = ["upgrade", "downgrade", "rollback", "tag-repush", "added", "removed", "other",
    "cluster-gone"];
  const SPEC = Object.assign({}, IT.COMMON, { kind: "list" });
  const result = document.getElementById("result");
  let ctl = null;
  const boxes = {};

  function setup(status, page) {
    ctl = IT.filters(document.getElementById("controls"), status, {
      range: true, defaultSince: DEFAULT_SINCE, onChange: (c) => page.update(c),
    });
    const group = IT.el("fieldset", { class: "field kinds", id: "f-kinds" },
      IT.el("legend", { text: "Kinds (none checked = all)" }));
    for (const kind of KINDS) {
      const box = IT.el("input", { type: "checkbox", id: "k-" + kind, value: kind });
      boxes[kind] = box;
      group.append(IT.el("label", { class: "check", for: "k-" + kind }, box, " ",
        IT.kindBadge(kind)));
      box.addEventListener("change", () =>
        page.update({ kind: KINDS.filter((k) => boxes[k].checked) }));
    }
    ctl.form.append(group);
  }

  function sync(state) {
    ctl.set(state);
    for (const kind of KINDS) boxes[kind].checked = state.kind.includes(kind);
  }

  async function render(state, signal) {
    const params = IT.apiParams(state, DEFAULT_SINCE, { kind: state.kind });
    const rows = await IT.api("/api/v1/changes", params, signal);
    IT.clear(result);
    const csv = new URLSearchParams(params);
    csv.set("format", "csv");
    const range = IT.rangeParams(state, DEFAULT_SINCE);
    result.append(IT.el("div", { class: "summary-row" },
      IT.el("p", { class: "summary", id: "summary" },
        IT.el("strong", { text: rows.length + (rows.length === 1 ? " change" : " changes") }),
        range.get("since") ? " in the last " + range.get("since") + ", newest first"
          : " from " + (state.from ? IT.time(state.from) : "the start") + " to " +
            (state.to ? IT.time(state.to) : "now") + ", newest first"),
      IT.el("a", { class: "button", id: "csv", href: "/api/v1/changes?" + csv,
        download: "imagetrail-changes.csv", text: "Download CSV" })));
    if (!rows.length) {
      result.append(IT.el("p", { class: "empty", id: "empty",
        text: "No version change matches these filters in this time range." }));
      return;
    }
    // Each column's cells carry its name (col-…): on a narrow screen app.css folds the
    // secondary ones (finished under started; cluster, namespace, container by the workload).
    // The explicit roles keep it a table to screen readers when CSS lays its rows out as grids.
    const columns = ["Started", "Finished", "Cluster", "Namespace", "Workload", "Container",
      "Kind", "Change", "Impact"];
    const col = (i, extra) => "col-" + columns[i].toLowerCase() + (extra ? " " + extra : "");
    const table = IT.el("table", { class: "data changes-log", id: "changes-table",
      role: "table" },
      IT.el("thead", { role: "rowgroup" }, IT.el("tr", { role: "row" }, columns.map(
        (h, i) => IT.el("th", { scope: "col", role: "columnheader", class: col(i), text: h })))),
      IT.el("tbody", { role: "rowgroup" }, IT.newestFirst(rows).map((c) => IT.el("tr", {
        role: "row", "data-key": changeKey(c) },
        IT.el("td", { class: col(0, "nowrap"), text: IT.time(c.started) }),
        IT.el("td", { class: col(1, "nowrap finished") }, IT.changeEnd(c)),
        IT.el("td", { class: col(2), text: c.cluster }),
        IT.el("td", { class: col(3), text: c.namespace }),
        IT.el("td", { class: col(4) }, IT.workloadLink(IT.workloadId(c), state,
          c.workload_kind + "/" + c.workload)),
        IT.el("td", { class: col(5), text: c.container }),
        IT.el("td", { class: col(6) }, IT.kindBadge(c.kind)),
        IT.el("td", { class: col(7) }, IT.transition(c)),
        IT.el("td", { class: col(8, "impact") }, IT.el("span", { class: "muted",
          text: "…" }))))));
    for (const td of table.tBodies[0].querySelectorAll("td")) td.setAttribute("role", "cell");
    result.append(IT.el("div", { class: "scroll" }, table));
    // Verdicts take Prometheus queries: the table is shown first, they fill in after.
    fillImpact(table, params, signal);
  }

  function changeKey(c) {
    return [c.cluster, c.namespace, c.workload_kind, c.workload, c.container, c.started]
      .join("\u0000");
  }

  async function fillImpact(table, params, signal) {
    const cells = new Map();
    for (const tr of table.tBodies[0].rows) cells.set(tr.getAttribute("data-key"), tr);
    let impacts;
    try {
      impacts = await IT.api("/api/v1/impact", params, signal);
    } catch (err) {
      if (err && err.name === "AbortError") return;
      const why = err.status === 400 ? "needs Prometheus" : "unavailable";
      for (const tr of cells.values()) {
        IT.replace(tr.querySelector("td.impact"), IT.el("span", { class: "muted",
          title: err.message + (err.hint ? " — " + err.hint : ""), text: why }));
      }
      return;
    }
    for (const impact of impacts) {
      const tr = cells.get(changeKey(impact));
      if (!tr) continue;
      const button = IT.el("button", { type: "button", class: "badge verdict verdict-" +
        impact.verdict, title: impact.reason, "aria-expanded": "false", text: impact.verdict });
      button.addEventListener("click", () => toggleDetail(tr, button, impact));
      IT.replace(tr.querySelector("td.impact"), button);
    }
  }

  function fmt(v) {
    if (v === null || v === undefined) return "—";
    const a = Math.abs(v);
    return a !== 0 && (a < 0.01 || a >= 1e5) ? v.toExponential(2) : String(+v.toPrecision(3));
  }

  function toggleDetail(tr, button, impact) {
    const next = tr.nextElementSibling;
    if (next && next.classList.contains("impact-detail")) {
      next.remove();
      button.setAttribute("aria-expanded", "false");
      return;
    }
    button.setAttribute("aria-expanded", "true");
    const chart = IT.el("div", { class: "impact-chart", id: "impact-chart" });
    const evidence = IT.el("table", { class: "data compact evidence" },
      IT.el("thead", {}, IT.el("tr", {}, ["Signal", "Before", "After", "Unit", "p (Holm)",
        "Cliff's δ", "Blocks", "Verdict"].map((h) => IT.el("th", { scope: "col", text: h })))),
      IT.el("tbody", {}, impact.signals.map((s) => IT.el("tr", {},
        IT.el("td", { text: s.name + (s.decides ? "" : " (evidence only)") }),
        IT.el("td", { text: fmt(s.before) }),
        IT.el("td", { text: fmt(s.after) }),
        IT.el("td", { text: s.unit }),
        IT.el("td", { text: fmt(s.p_value) }),
        IT.el("td", { text: s.effect === null ? "—" : s.effect.toFixed(2) }),
        IT.el("td", { text: s.blocks_before + " / " + s.blocks_after }),
        IT.el("td", {}, IT.el("span", { class: "badge verdict-" + s.verdict,
          text: s.verdict }))))));
    const windows = "Before " + IT.time(impact.before.from) + " – " + IT.time(impact.before.to) +
      (impact.after ? "; after " + IT.time(impact.after.from) + " – " +
        IT.time(impact.after.to) : "; rollout not finished") + ". " + impact.reason;
    const row = IT.el("tr", { class: "impact-detail", role: "row" }, IT.el("td", { colspan: 9,
      role: "cell" },
      IT.el("p", { class: "muted", text: windows }), chart,
      IT.el("div", { class: "scroll" }, evidence)));
    tr.after(row);
    drawImpact(chart, impact);
  }

  // One small box plot per signal: the block values before vs after the change.
  function drawImpact(node, impact) {
    const shown = impact.signals.filter((s) => s.before_values.length || s.after_values.length);
    if (!shown.length) {
      node.append(IT.el("p", { class: "empty", text: "No block values to draw." }));
      return;
    }
    const t = IT.chartTheme();
    const traces = [];
    const layout = IT.baseLayout({ height: 260, showlegend: false,
      grid: { rows: 1, columns: shown.length, pattern: "independent" },
      margin: { l: 40, r: 10, t: 30, b: 30 }, annotations: [] });
    shown.forEach((s, i) => {
      const n = i === 0 ? "" : String(i + 1);
      for (const [label, values, color] of [["before", s.before_values, t.muted],
        ["after", s.after_values, s.verdict === "regression" ? t.warn : t.accent]]) {
        traces.push({ type: "box", y: values, name: label, xaxis: "x" + n, yaxis: "y" + n,
          boxpoints: "all", jitter: 0.4, pointpos: 0, marker: { color, size: 4 },
          line: { color }, hovertemplate: label + ": %{y:.3g}<extra></extra>" });
      }
      layout["yaxis" + n] = { gridcolor: t.grid, zeroline: false, rangemode: "tozero" };
      layout.annotations.push({ text: IT.plotText(s.name), showarrow: false,
        xref: "x" + n + " domain", yref: "y" + n + " domain", x: 0.5, y: 1.15 });
    });
    window.Plotly.newPlot(node, traces, layout, IT.plotConfig);
  }

  IT.page({ spec: SPEC, setup, sync, render, result });
})();
