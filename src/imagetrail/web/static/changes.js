// Changes: a filterable table with kind badges and a CSV download of the same rows.
"use strict";

(function () {
  const IT = window.IT;
  const DEFAULT_SINCE = "7d";
  const KINDS = ["upgrade", "downgrade", "rollback", "tag-repush", "added", "removed", "other"];
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
    const table = IT.el("table", { class: "data", id: "changes-table" },
      IT.el("thead", {}, IT.el("tr", {}, ["Started", "Finished", "Cluster", "Namespace",
        "Workload", "Container", "Kind", "Change"].map(
        (h) => IT.el("th", { scope: "col", text: h })))),
      IT.el("tbody", {}, rows.slice().reverse().map((c) => IT.el("tr", {},
        IT.el("td", { class: "nowrap", text: IT.time(c.started) }),
        IT.el("td", { class: "nowrap", text: c.finished ? IT.time(c.finished) : "in progress" }),
        IT.el("td", { text: c.cluster }),
        IT.el("td", { text: c.namespace }),
        IT.el("td", {}, IT.workloadLink(IT.workloadId(c), state,
          c.workload_kind + "/" + c.workload)),
        IT.el("td", { text: c.container }),
        IT.el("td", {}, IT.kindBadge(c.kind)),
        IT.el("td", {}, IT.transition(c))))));
    result.append(IT.el("div", { class: "scroll" }, table));
  }

  IT.page({ spec: SPEC, setup, sync, render, result });
})();
