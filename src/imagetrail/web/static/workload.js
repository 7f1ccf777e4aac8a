// One workload: version timeline per container or per pod, change markers, the periods its pods
// waited without running (failed and stuck rollouts), deployment markers (events posted by
// CI/CD pipelines), change log and deployments.
// Without a workload (or with an ambiguous one): a picker.
"use strict";

(function () {
  const IT = window.IT;
  const DEFAULT_SINCE = "30d";
  const SPEC = Object.assign({}, IT.COMMON, { view: "string" });
  const SPAN_LIMIT = 5000;
  // The narrowest a version's bar is drawn, in pixels: a 20-minute version in a 30-day view
  // would otherwise be a fraction of a pixel (it is listed under the chart as well).
  const MIN_BAR_PX = 4;
  // Two versions of one chart whose colours collide (a hash into a small palette) differ by
  // a hatch pattern.
  const PATTERNS = ["", "/", "x", ".", "\\", "+", "-", "|"];
  // Every container is "ContainerCreating" for a moment before it runs: such a wait is drawn
  // only when it lasted as long as analysis/attempts.py takes it for a stuck rollout.
  const BENIGN_REASONS = ["ContainerCreating", "PodInitializing"];
  const BENIGN_WAIT_S = 300;
  // Waits of one container and image less than this apart are one bar per container (a pod
  // going from ErrImagePull to ImagePullBackOff and back is one waiting period).
  const WAIT_JOIN_MS = 120 * 1000;
  const result = document.getElementById("result");
  let ctl = null;
  let page = null;
  let last = null;

  function setup(status, p) {
    page = p;
    ctl = IT.filters(document.getElementById("controls"), status, {
      range: true, defaultSince: DEFAULT_SINCE, onChange: (c) => page.update(c),
    });
    const view = IT.el("select", { id: "t-view" },
      IT.el("option", { value: "", text: "per container" }),
      IT.el("option", { value: "pods", text: "per pod" }));
    view.addEventListener("change", () => page.update({ view: view.value }));
    ctl.view = view;
    ctl.form.append(IT.el("div", { class: "field toggles" }, IT.el("span", { class: "inline" },
      IT.el("label", { for: "t-view", text: "Timeline: " }), view)));
  }

  function sync(state) {
    ctl.set(state);
    ctl.view.value = state.view === "pods" ? "pods" : "";
  }

  async function render(state, signal) {
    if (!state.workload) {
      await picker(state, signal, null);
      return;
    }
    const params = IT.apiParams(state, DEFAULT_SINCE);
    const [window_, history, spans, changes, deployments, waits] = await Promise.all([
      // The range exactly as the server resolves it for these parameters (a relative "7d",
      // unix seconds, a missing end): the heatmap answer says it; a few columns suffice.
      IT.api("/api/v1/heatmap", IT.apiParams(state, DEFAULT_SINCE,
        { width: 60, sandbox: "true" }), signal),
      IT.api("/api/v1/history", params, signal),
      IT.api("/api/v1/spans", IT.apiParams(state, DEFAULT_SINCE, { limit: SPAN_LIMIT }), signal),
      IT.api("/api/v1/changes", params, signal),
      // Deployment events are extra: the timeline still draws if they cannot be read.
      IT.api("/api/v1/deployments", params, signal).catch((err) => {
        if (err && err.name === "AbortError") throw err;
        return [];
      }),
      IT.api("/api/v1/waits", IT.apiParams(state, DEFAULT_SINCE, { limit: SPAN_LIMIT }), signal),
    ]);
    const range = { from: window_.from, to: window_.to };
    last = { state, range, history, spans, changes, deployments, waits };
    draw(last);
  }

  // A failed lookup (an ambiguous or unknown name) still leaves a way forward.
  function failed(err, state) {
    IT.clear(result);
    if (state.workload) picker(state, undefined, state.workload).catch(IT.showError);
  }

  async function picker(state, signal, filterText) {
    const rows = await IT.api("/api/v1/workloads",
      IT.params(state, ["cluster", "namespace"]), signal);
    if (window.Plotly) for (const p of result.querySelectorAll(".plot")) window.Plotly.purge(p);
    IT.clear(result);
    const search = IT.el("input", { id: "pick-filter", type: "search", autocomplete: "off",
      spellcheck: "false", placeholder: "part of a name" });
    search.value = filterText || "";
    const body = IT.el("tbody");
    const count = IT.el("p", { class: "summary", id: "pick-count" });
    function fill() {
      const q = search.value.trim().toLowerCase();
      const shown = rows.filter((r) => !q || (IT.workloadId(r) + "/" + r.container)
        .toLowerCase().includes(q));
      IT.replace(count, shown.length + " of " + rows.length + " workload containers");
      IT.replace(body, shown.slice(0, 500).map((r) => IT.el("tr", {},
        IT.el("td", {}, IT.workloadLink(IT.workloadId(r), state)),
        IT.el("td", { text: r.container }),
        IT.el("td", {}, (r.images.length ? r.images : ["—"]).map((img) =>
          IT.imageCode(img, { class: "image block" })), IT.staleBadge(r)),
        IT.el("td", { class: "num", text: r.containers }),
        IT.el("td", { class: "nowrap", text: IT.time(r.last_change) }))));
    }
    search.addEventListener("input", fill);
    result.append(
      IT.el("h2", { text: "Choose a workload" }),
      IT.el("div", { class: "field inline" },
        IT.el("label", { for: "pick-filter", text: "Filter: " }), search),
      count,
      IT.el("div", { class: "scroll" }, IT.el("table", { class: "data", id: "picker" },
        IT.el("thead", {}, IT.el("tr", {}, ["Workload", "Container", "Running now", "Containers",
          "Last change"].map((h) => IT.el("th", { scope: "col", text: h })))), body)));
    fill();
  }

  function plural(n, word) {
    return n + " " + word + (n === 1 ? "" : "s");
  }

  function versionKey(image, digest) {
    return image + "@" + (digest || "");
  }

  // A pipeline link only when it is an absolute http(s) URL (the API checks this too); the
  // URL parser's own serialisation is what is used.
  function externalURL(value) {
    if (typeof value !== "string") return null;
    try {
      const url = new URL(value);
      return url.protocol === "http:" || url.protocol === "https:" ? url.href : null;
    } catch (err) {
      return null;
    }
  }

  // IT.el only builds local links; pipeline links go elsewhere, in a new tab, without opener.
  function externalLink(value, label) {
    const href = externalURL(value);
    if (!href) return document.createTextNode("—");
    const a = document.createElement("a");
    a.setAttribute("href", href);
    a.setAttribute("rel", "noopener noreferrer");
    a.setAttribute("target", "_blank");
    a.className = "pipeline-link";
    a.textContent = label;
    return a;
  }

  function deployHover(d) {
    const lines = ["deployment at " + IT.time(d.deployed_at), d.image];
    if (d.container) lines.push("container " + d.container);
    lines.push(d.commit ? "commit " + d.commit : "no commit given");
    const url = externalURL(d.pipeline_url);
    if (url) lines.push("pipeline " + url + " (click the marker to open)");
    if (d.matched_change) {
      lines.push("became the " + d.matched_change.kind + " at " +
        IT.time(d.matched_change.started));
    } else lines.push("no detected change matches it");
    if (d.lead_time_seconds !== null && d.lead_time_seconds !== undefined) {
      lines.push("lead time " + IT.duration(d.lead_time_seconds));
    }
    return lines.map((l) => IT.plotText(l)).join("<br>");
  }

  // Where a bar is drawn: its part inside the shown range, at least minMs wide (kept inside
  // the range). Its true times stay in the hover text and the list under the chart.
  function drawnBar(b, shown, minMs) {
    const lo = Math.max(new Date(b.from).getTime(), shown[0]);
    const hi = Math.min(new Date(b.to).getTime(), shown[1]);
    if (!(hi >= lo)) return { base: b.from, x: 0 }; // wholly outside the range: not drawn
    const width = Math.max(hi - lo, minMs);
    const start = lo + width > shown[1] ? Math.max(shown[0], shown[1] - width) : lo;
    return { base: new Date(start).toISOString(), x: width };
  }

  const ms = (t) => new Date(t).getTime();

  // The waits worth drawing: all but a short moment of "ContainerCreating".
  function notBenign(waits) {
    return waits.filter((w) => !BENIGN_REASONS.includes(w.reason) ||
      (ms(w.last_seen) - ms(w.first_seen)) / 1000 >= BENIGN_WAIT_S);
  }

  // Waiting bars: one per wait per pod (pods view), or per container one per stretch of
  // waits of one image (container view), with their reasons in order of appearance.
  function waitingBars(waits, perPod, manyClusters) {
    const ordered = waits.slice().sort((a, b) => ms(a.first_seen) - ms(b.first_seen));
    if (perPod) {
      return ordered.map((w) => ({ row: w.container + " · " + w.pod +
        (manyClusters ? " · " + w.cluster : ""), image: w.image, from: w.first_seen,
      to: w.last_seen, reasons: [w.reason], pods: new Set([w.pod_uid || w.pod]), pod: w.pod }));
    }
    const open = new Map();
    const out = [];
    for (const w of ordered) {
      const key = w.container + "\u0000" + w.image;
      const cur = open.get(key);
      if (cur && ms(w.first_seen) <= ms(cur.to) + WAIT_JOIN_MS) {
        if (ms(w.last_seen) > ms(cur.to)) cur.to = w.last_seen;
        if (!cur.reasons.includes(w.reason)) cur.reasons.push(w.reason);
        cur.pods.add(w.pod_uid || w.pod);
        continue;
      }
      const bar = { row: w.container, image: w.image, from: w.first_seen, to: w.last_seen,
        reasons: [w.reason], pods: new Set([w.pod_uid || w.pod]), pod: w.pod };
      open.set(key, bar);
      out.push(bar);
    }
    return out;
  }

  function waitHover(b) {
    return [
      "waiting, not running: " + b.reasons.join(", "),
      b.image,
      IT.time(b.from) + " → " + IT.time(b.to) + " (" +
        IT.duration((ms(b.to) - ms(b.from)) / 1000) + ")",
      b.pods.size === 1 ? "pod " + b.pod : b.pods.size + " pods",
    ].map((l) => IT.plotText(l)).join("<br>");
  }

  function draw({ state, range, history, spans, changes, deployments, waits }) {
    if (window.Plotly) for (const p of result.querySelectorAll(".plot")) window.Plotly.purge(p);
    IT.clear(result);
    const ids = Array.from(new Set(spans.map(IT.workloadId)));
    const title = ids.length === 1 ? ids[0] : state.workload;
    result.append(IT.el("h2", { class: "workload-title" }, "Workload ",
      IT.el("code", { id: "workload-id", text: title })));
    const shownWaits = notBenign(waits || []);
    if (!history.length && !spans.length && !shownWaits.length) {
      result.append(IT.el("p", { class: "empty", id: "empty",
        text: "This workload ran nothing in this time range. Try a longer range." }));
      return;
    }
    const asked = IT.rangeParams(state, DEFAULT_SINCE);
    result.append(IT.el("p", { class: "summary", id: "summary" },
      plural(history.length, "version period") + " across " +
      plural(new Set(history.map((h) => h.container)).size, "container") + ", " +
      plural(new Set(spans.map((s) => s.pod_uid || s.pod)).size, "pod") + ", " +
      changes.length + (changes.length === 1 ? " change" : " changes") +
      (shownWaits.length ? ", " + plural(shownWaits.length, "waiting period") : "") +
      (asked.get("since") ? " in the last " + asked.get("since") : "") +
      " · " + IT.time(range.from) + " → " + IT.time(range.to)));

    // Versions in the order they first appeared; one colour (and legend entry) each.
    const bars = state.view === "pods"
      ? spans.map((s) => ({
        row: s.container + " · " + s.pod + (ids.length > 1 ? " · " + s.cluster : ""),
        container: s.container, image: s.image, digest: s.digest, from: s.first_seen,
        to: s.last_seen, detail: "pod " + s.pod }))
      : history.map((h) => ({ row: h.container, container: h.container, image: h.image,
        digest: h.digest, from: h.first_seen, to: h.last_seen,
        detail: "up to " + h.containers_max + " containers" }));
    bars.sort((a, b) => (a.from < b.from ? -1 : a.from > b.from ? 1 : 0));
    const versions = [];
    for (const b of bars) {
      const key = versionKey(b.image, b.digest);
      if (!versions.includes(key)) versions.push(key);
    }
    const waitBars = waitingBars(shownWaits, state.view === "pods", ids.length > 1);
    const rowNames = [];
    for (const b of bars.concat(waitBars).sort((a, c) =>
      (a.row < c.row ? -1 : a.row > c.row ? 1 : 0))) {
      if (!rowNames.includes(b.row)) rowNames.push(b.row);
    }
    const rowOf = new Map(rowNames.map((r, i) => [r, i]));
    const theme = IT.chartTheme();
    const shown = [new Date(range.from).getTime(), new Date(range.to).getTime()];
    const plot = IT.el("div", { id: "timeline", class: "plot", role: "img",
      "aria-label": "Version timeline" });
    result.append(plot);
    // The chart's drawing width is known once plotly has laid it out; until then the whole
    // box is an overestimate (a thinner minimum), corrected right after the first draw.
    const minMsFor = (px) => (MIN_BAR_PX * Math.max(0, shown[1] - shown[0])) / Math.max(1, px);
    // Colour from the version's reference, the same everywhere; a pattern only for versions
    // of this chart whose colours collide.
    const byColor = new Map();
    for (const key of versions.slice().sort()) {
      const color = IT.versionColor(key);
      byColor.set(color, (byColor.get(color) || []).concat([key]));
    }
    const patternOf = (key) => PATTERNS[byColor.get(IT.versionColor(key)).indexOf(key) %
      PATTERNS.length];
    const versionBars = versions.map((key) =>
      bars.filter((b) => versionKey(b.image, b.digest) === key));
    // The version bars' traces, then the waiting bars' one (when there are waits).
    const barGeometry = (minMs) => versionBars.concat(waitBars.length ? [waitBars] : [])
      .map((mine) => mine.map((b) => drawnBar(b, shown, minMs)));
    const geometry = barGeometry(minMsFor(plot.clientWidth || 1200));
    const traces = versions.map((key, vi) => {
      const mine = versionBars[vi];
      const first = mine[0];
      const name = first.image + (versions.some((k, j) => j !== vi &&
        k.startsWith(first.image + "@")) ? " @" + IT.shortDigest(first.digest) : "");
      return {
        type: "bar",
        orientation: "h",
        name: IT.plotText(name),
        base: geometry[vi].map((g) => g.base),
        x: geometry[vi].map((g) => g.x),
        y: mine.map((b) => rowOf.get(b.row)),
        marker: { color: IT.versionColor(first.image), line: { width: 0 },
          pattern: { shape: patternOf(key), fillmode: "overlay", solidity: 0.4 } },
        customdata: mine.map((b) => IT.plotText(b.image) + "<br>" +
          IT.plotText(IT.shortDigest(b.digest) || "no digest") + "<br>" +
          IT.plotText(IT.time(b.from) + " → " + IT.time(b.to)) + "<br>" + IT.plotText(b.detail)),
        hovertemplate: "%{customdata}<extra></extra>",
      };
    });
    // Waiting periods: a narrower hatched outline over the row, in the warning colour and
    // labelled with the reason, so that it is never taken for a version that ran.
    if (waitBars.length) {
      const g = geometry[versions.length];
      // A label only where it fits inside its bar, upright (plotly would turn a long label
      // on a thin bar sideways, across its neighbours); the hover and the table say it all.
      const msPerPx = Math.max(1, shown[1] - shown[0]) / Math.max(1, plot.clientWidth || 1200);
      const fits = (label, i) => g[i].x / msPerPx >= label.length * 6.5 + 12;
      traces.push({
        type: "bar",
        orientation: "h",
        name: "waiting, not running",
        base: g.map((b) => b.base),
        x: g.map((b) => b.x),
        y: waitBars.map((b) => rowOf.get(b.row)),
        width: 0.45,
        // In the text colour: it stands out on every version colour (the warning orange
        // vanished on an orange version).
        marker: { color: "rgba(0,0,0,0)", line: { color: theme.fg, width: 1.5 },
          pattern: { shape: "/", fgcolor: theme.fg, bgcolor: "rgba(0,0,0,0)",
            fillmode: "replace", solidity: 0.25 } },
        text: waitBars.map((b, i) => {
          const label = b.reasons.join(", ");
          return fits(label, i) ? IT.plotText(label) : "";
        }),
        textposition: "inside",
        insidetextanchor: "middle",
        textangle: 0,
        constraintext: "none",
        cliponaxis: true,
        textfont: { color: theme.fg, size: 11 },
        customdata: waitBars.map(waitHover),
        hovertemplate: "%{customdata}<extra></extra>",
      });
    }
    // Change markers: on the container's row in the per-container view; lines in both views.
    const shapes = changes.map((c) => ({
      type: "line", xref: "x", yref: "paper", x0: c.started, x1: c.started, y0: 0, y1: 1,
      line: { color: theme.muted, width: 1, dash: "dot" },
    }));
    if (state.view !== "pods" && changes.length) {
      traces.push({
        type: "scatter",
        mode: "markers",
        name: "changes",
        x: changes.map((c) => c.started),
        y: changes.map((c) => rowOf.get(c.container)),
        marker: { symbol: "diamond", size: 11, color: theme.fg,
          line: { color: theme.bg, width: 1.5 } },
        customdata: changes.map((c) => IT.plotText(c.kind + " at " + IT.time(c.started)) +
          "<br>" + IT.plotText((c.from_image || "—") + " → " + (c.to_image || "—")) +
          (c.state === "aborted" || c.state === "superseded" || c.state === "failed"
            ? "<br>" + IT.plotText(c.state + " " + IT.time(c.ended))
            : c.state === "stuck" ? "<br>stuck" : "") +
          (IT.attemptText(c) ? "<br>" + IT.plotText(IT.attemptText(c)) : "")),
        hovertemplate: "%{customdata}<extra></extra>",
      });
    }
    // Deployment markers: a dashed line in their own colour and a triangle on the row of the
    // event's container (or of the change it became; else the first row), in both views.
    const deploys = deployments || [];
    const DEPLOY_COLOR = "#c2255c";
    for (const d of deploys) {
      shapes.push({ type: "line", xref: "x", yref: "paper", x0: d.deployed_at, x1: d.deployed_at,
        y0: 0, y1: 1, line: { color: DEPLOY_COLOR, width: 1, dash: "dash" } });
    }
    const deployRow = (d) => {
      const container = d.container || (d.matched_change && d.matched_change.container);
      if (state.view !== "pods") return rowOf.has(container) ? rowOf.get(container) : 0;
      const i = rowNames.findIndex((r) => r.startsWith(container + " · "));
      return i >= 0 ? i : 0;
    };
    if (deploys.length) {
      traces.push({
        type: "scatter",
        mode: "markers",
        name: "deployments",
        x: deploys.map((d) => d.deployed_at),
        y: deploys.map(deployRow),
        marker: { symbol: "triangle-down", size: 13, color: DEPLOY_COLOR,
          line: { color: theme.bg, width: 1 } },
        customdata: deploys.map(deployHover),
        hovertemplate: "%{customdata}<extra></extra>",
      });
    }
    window.Plotly.newPlot(plot, traces, IT.baseLayout({
      barmode: "overlay",
      height: Math.max(240, rowNames.length * 26 + 130),
      showlegend: true,
      legend: { orientation: "h", y: -0.15, font: { size: 11 } },
      // Exactly the asked range, not the bars' extent (a version's bar may reach far
      // outside it).
      xaxis: { type: "date", range: [range.from, range.to], autorange: false,
        gridcolor: theme.grid },
      yaxis: { tickmode: "array", tickvals: rowNames.map((_, i) => i),
        ticktext: rowNames.map((r) => IT.plotText(r)), autorange: "reversed", zeroline: false,
        automargin: true,
        fixedrange: true },
      shapes,
      margin: { l: 10, r: 20, t: 10, b: 20 },
    }), IT.plotConfig);
    const axis = plot._fullLayout && plot._fullLayout.xaxis;
    if (axis && axis._length) {
      const exact = barGeometry(minMsFor(axis._length));
      // New x values would make plotly guess the axis type again: it is restated.
      window.Plotly.update(plot, { base: exact.map((g) => g.map((b) => b.base)),
        x: exact.map((g) => g.map((b) => b.x)) },
      { "xaxis.type": "date", "xaxis.range": [range.from, range.to] },
      exact.map((_, i) => i));
    }
    plot.on("plotly_click", (ev) => {
      const point = ev && ev.points && ev.points[0];
      if (!point || point.data.name !== "deployments") return;
      const url = externalURL(deploys[point.pointIndex].pipeline_url);
      if (url) window.open(url, "_blank", "noopener,noreferrer");
    });

    result.append(IT.el("h2", { text: "Versions" }),
      IT.el("div", { class: "scroll" }, versionTable(history)));
    if (shownWaits.length) {
      result.append(IT.el("h2", { text: "Waiting, not running" }),
        IT.el("div", { class: "scroll" }, waitTable(shownWaits)));
    }

    result.append(IT.el("h2", { text: "Change log" }));
    if (!changes.length) {
      result.append(IT.el("p", { class: "empty", id: "no-changes",
        text: "No version change in this time range." }));
    } else {
      result.append(IT.el("div", { class: "scroll" }, changeTable(IT.newestFirst(changes))));
    }
    if (deploys.length) {
      result.append(IT.el("h2", { text: "Deployments" }),
        IT.el("div", { class: "scroll" }, deployTable(deploys.slice().reverse())));
    }
  }

  // Every version period, so that none depends on seeing its bar: container, image, from,
  // to and how long (the true times, also outside the shown range).
  function versionTable(history) {
    const rows = history.slice().sort((a, b) =>
      (a.container < b.container ? -1 : a.container > b.container ? 1 : 0) ||
      new Date(a.first_seen) - new Date(b.first_seen));
    return IT.el("table", { class: "data", id: "versions-list" },
      IT.el("caption", { class: "sr", text: "Version periods of this workload" }),
      IT.el("thead", {}, IT.el("tr", {}, ["Container", "Image", "Digest", "From", "To",
        "Duration"].map((h) => IT.el("th", { scope: "col", text: h })))),
      IT.el("tbody", {}, rows.map((h) => IT.el("tr", {},
        IT.el("td", { class: "container", text: h.container }),
        IT.el("td", { class: "image" }, IT.swatch(h.image), IT.imageCode(h.image)),
        IT.el("td", { class: "mono", title: h.digest || "",
          text: IT.shortDigest(h.digest) || "—" }),
        IT.el("td", { class: "nowrap from", text: IT.time(h.first_seen) }),
        IT.el("td", { class: "nowrap to", text: IT.time(h.last_seen) }),
        IT.el("td", { class: "nowrap num duration",
          text: IT.duration((new Date(h.last_seen) - new Date(h.first_seen)) / 1000) })))));
  }

  // Every wait of a pod container (the bars' true times, per pod), oldest first.
  function waitTable(waits) {
    const rows = waits.slice().sort((a, b) => ms(a.first_seen) - ms(b.first_seen) ||
      (a.pod < b.pod ? -1 : a.pod > b.pod ? 1 : 0));
    return IT.el("table", { class: "data", id: "waits-list" },
      IT.el("caption", { class: "sr", text: "Periods its pods waited without running" }),
      IT.el("thead", {}, IT.el("tr", {}, ["Container", "Pod", "Image", "Reason", "From", "To",
        "Duration"].map((h) => IT.el("th", { scope: "col", text: h })))),
      IT.el("tbody", {}, rows.map((w) => IT.el("tr", {},
        IT.el("td", { class: "container", text: w.container }),
        IT.el("td", { class: "pod", text: w.pod }),
        IT.el("td", { class: "image" }, IT.imageCode(w.image)),
        IT.el("td", { class: "reason", text: w.reason }),
        IT.el("td", { class: "nowrap from", text: IT.time(w.first_seen) }),
        IT.el("td", { class: "nowrap to", text: IT.time(w.last_seen) }),
        IT.el("td", { class: "nowrap num duration",
          text: IT.duration((ms(w.last_seen) - ms(w.first_seen)) / 1000) })))));
  }

  function deployTable(deploys) {
    return IT.el("table", { class: "data", id: "deployments-table" },
      IT.el("thead", {}, IT.el("tr", {}, ["Deployed", "Container", "Image", "Commit", "Pipeline",
        "Matched change", "Lead time"].map((h) => IT.el("th", { scope: "col", text: h })))),
      IT.el("tbody", {}, deploys.map((d) => IT.el("tr", {},
        IT.el("td", { class: "nowrap", text: IT.time(d.deployed_at) }),
        IT.el("td", { text: d.container || "—" }),
        IT.el("td", {}, IT.imageCode(d.image, { class: "image block" })),
        IT.el("td", {}, IT.el("code", { text: d.commit || "—" })),
        IT.el("td", {}, externalLink(d.pipeline_url, "pipeline")),
        IT.el("td", {}, d.matched_change
          ? [IT.kindBadge(d.matched_change.kind), " " + IT.time(d.matched_change.started)]
          : "none"),
        IT.el("td", { class: "nowrap",
          text: d.lead_time_seconds === null || d.lead_time_seconds === undefined
            ? "—" : IT.duration(d.lead_time_seconds) })))));
  }

  function changeTable(changes) {
    return IT.el("table", { class: "data", id: "changes-table" },
      IT.el("thead", {}, IT.el("tr", {}, ["Started", "Finished", "Container", "Kind", "Change"]
        .map((h) => IT.el("th", { scope: "col", text: h })))),
      IT.el("tbody", {}, changes.map((c) => IT.el("tr", {},
        IT.el("td", { class: "nowrap", text: IT.time(c.started) }),
        IT.el("td", { class: "nowrap finished" }, IT.changeEnd(c)),
        IT.el("td", { text: c.container }),
        IT.el("td", {}, IT.kindBadge(c.kind)),
        IT.el("td", {}, IT.transition(c))))));
  }

  IT.page({
    spec: SPEC, setup, sync, render, failed, result,
    recolor: () => {
      if (last && last.state.workload) draw(last);
    },
  });
})();
