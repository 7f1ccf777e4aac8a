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

  // Workload containers running more than one version at the instant: one entry per
  // container (a sidecar beside it that runs one version is not mixed).
  function mixedContainers(workloads) {
    return workloads.filter((w) => (w.images || []).length > 1)
      .map((w) => ({ id: IT.workloadId(w), row: w, images: new Set(w.images) }));
  }

  // The mixed workload containers a version row belongs to: the row's image is one of the
  // versions that container runs, in one of the row's workloads.
  function mixedFor(row, mixed) {
    return mixed.filter((m) => m.images.has(row.image) && row.workloads.includes(m.id));
  }

  async function render(state, signal) {
    const rows = await IT.api("/api/v1/versions",
      IT.apiParams(state, null, { at: state.at }), signal);
    const at = rows.length ? rows[0].at : state.at;
    // /workloads at the very instant the versions answer used, so both describe one moment.
    const workloads = await IT.api("/api/v1/workloads",
      IT.apiParams(state, null, { at }), signal);
    last = { rows, at, mixed: mixedContainers(workloads) };
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

    if (mixed.length) {
      const list = IT.el("ul", { class: "mixed-list", id: "mixed" });
      for (const m of mixed) {
        list.append(IT.el("li", { "data-workload": m.id, "data-container": m.row.container },
          IT.workloadLink(m.id, {}), " container ", IT.el("code", { text: m.row.container }),
          " runs ", m.row.images.map((img, i) => [i ? " and " : "", IT.swatch(img),
            IT.imageCode(img)]), IT.staleBadge(m.row)));
      }
      const count = new Set(mixed.map((m) => m.id)).size;
      result.append(IT.el("div", { class: "callout warn" },
        IT.el("strong", { text: count +
          (count === 1 ? " workload runs" : " workloads run") + " more than one version" }),
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
    const mixedOf = rows.map((r) => mixedFor(r, mixed));
    const isMixed = mixedOf.map((m) => m.length > 0);
    const plot = IT.el("div", { id: "bars", class: "plot", role: "img",
      "aria-label": "Containers per version" });
    result.append(plot);
    const theme = IT.chartTheme();
    window.Plotly.newPlot(plot, [{
      type: "bar",
      orientation: "h",
      y: rows.map((_, i) => i),
      x: rows.map((r) => r.containers),
      // Colour = the version (as on every page); hatched = caught in the middle of a rollout.
      marker: {
        color: rows.map((r) => IT.versionColor(r.image)),
        line: { color: isMixed.map((m) => (m ? theme.warn : "rgba(0,0,0,0)")), width: 2 },
        pattern: { shape: isMixed.map((m) => (m ? "/" : "")), fillmode: "overlay",
          solidity: 0.35 },
      },
      text: labels.map((l) => IT.plotText(l)),
      customdata: rows.map((r, i) => IT.plotText(IT.shortDigest(r.digest) || "no digest") +
        "<br>" + IT.plotText(r.workloads.length + " workloads") +
        (isMixed[i] ? "<br>" + IT.plotText("mixed: " + mixedOf[i].map((m) => m.id + " " +
          m.row.container).join(", ")) : "") +
        (r.stale === true ? "<br>" + IT.plotText("stale: last known values of a silent cluster")
          : "")),
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
      IT.el("tbody", {}, rows.map((r, i) => {
        const mixedIds = new Set(mixedOf[i].map((m) => m.id));
        const containers = Array.from(new Set(mixedOf[i].map((m) => m.row.container)));
        return IT.el("tr", { class: [isMixed[i] ? "mixed" : "", r.stale === true ? "stale" : ""]
          .join(" ").trim() || null },
        IT.el("td", { class: "image" }, IT.swatch(r.image), IT.imageCode(r.image),
          isMixed[i] ? IT.el("span", { class: "badge warn mixed-badge", text: "mixed",
            title: "container " + containers.join(", ") +
              " of a workload here runs more than one version" }) : null,
          IT.staleBadge(r)),
        IT.el("td", { class: "mono", title: r.digest || "",
          text: IT.shortDigest(r.digest) || "—" }),
        IT.el("td", { class: "num", text: r.containers }),
        IT.el("td", { class: "workloads" }, r.workloads.map((w) => IT.el("span",
          { class: mixedIds.has(w) ? "wl mixed" : "wl" }, IT.workloadLink(w, {}),
          mixedIds.has(w) ? IT.el("span", { class: "badge warn", text: "several versions" })
            : null))));
      })));
    result.append(IT.el("div", { class: "scroll" }, table));
  }

  IT.page({
    spec: SPEC, setup, sync, render, result,
    recolor: () => {
      if (last) draw(last);
    },
  });
})();
