// imagetrail pages: what every page shares — DOM building, the JSON API, the banner, the URL
// state and the filter controls.
//
// Security: there is no inline script anywhere (CSP script-src 'self'). Every value that comes
// from a cluster enters the DOM only as textContent, as the value of a safe attribute set with
// setAttribute, or as plotly data passed through IT.plotText (plotly renders a subset of HTML
// in hover text and tick labels, so `<`, `>` and `&` must be escaped before plotly sees them).
"use strict";

(function () {
  const IT = {};
  window.IT = IT;

  // ------------------------------------------------------------------ DOM helpers

  IT.$ = (selector, root) => (root || document).querySelector(selector);

  // Only attributes whose value cannot run script; `href` is checked separately.
  const SAFE_ATTRS = new Set([
    "id", "title", "role", "type", "name", "value", "for", "placeholder", "size", "list",
    "colspan", "scope", "download", "checked", "selected", "multiple", "hidden", "disabled",
    "autocomplete", "spellcheck", "tabindex", "datetime",
  ]);

  function append(node, children) {
    for (const child of children) {
      if (child === null || child === undefined || child === false) continue;
      if (Array.isArray(child)) append(node, child);
      else if (child instanceof Node) node.appendChild(child);
      else node.appendChild(document.createTextNode(String(child)));
    }
  }

  // Links are built by this code from our own paths; anything else is refused.
  function safeHref(href) {
    const s = String(href);
    // "//host" and "/\host" are other origins to a browser.
    if (s.startsWith("/") && !s.startsWith("//") && !s.startsWith("/\\")) return s;
    if (s.startsWith("?") || s.startsWith("#")) return s;
    throw new Error("refusing a link that is not local: " + s);
  }

  // el("a", {class: "x", href: "/y", text: value}, child, ...) — never innerHTML.
  IT.el = function (tag, props, ...children) {
    const node = document.createElement(tag);
    for (const [key, value] of Object.entries(props || {})) {
      if (value === null || value === undefined || value === false) continue;
      if (key === "text") node.textContent = String(value);
      else if (key === "class") node.className = value;
      else if (key === "href") node.setAttribute("href", safeHref(value));
      else if (key.startsWith("on")) node.addEventListener(key.slice(2), value);
      else if (key.startsWith("aria-") || key.startsWith("data-") || SAFE_ATTRS.has(key)) {
        node.setAttribute(key, value === true ? "" : String(value));
      } else throw new Error("attribute not allowed: " + key);
    }
    append(node, children);
    return node;
  };

  IT.clear = function (node) {
    while (node.firstChild) node.removeChild(node.firstChild);
    return node;
  };

  IT.replace = function (node, ...children) {
    IT.clear(node);
    append(node, children);
    return node;
  };

  // A string for plotly's hover text, tick labels and legend: plotly interprets a subset of
  // HTML there, so `<`, `>` and `&` become entities (shown as the characters, never as tags).
  // SVG text would fold a newline into a space, hiding it: it is shown as ⏎ instead.
  IT.plotText = function (value) {
    return String(value === null || value === undefined ? "" : value)
      .replace(/&/g, "&amp;")
      .replace(/</g, "&lt;")
      .replace(/>/g, "&gt;")
      .replace(/\r?\n/g, "\u23ce")
      .replace(/[\u0000-\u001f\u007f]/g, "\ufffd");
  };

  // ------------------------------------------------------------------ formatting

  // Every time on the pages is UTC, as the API answers and as plotly draws them.
  IT.time = function (iso) {
    if (!iso) return "—";
    const d = new Date(iso);
    if (Number.isNaN(d.getTime())) return String(iso);
    return d.toISOString().slice(0, 19).replace("T", " ") + "Z";
  };

  IT.isoSeconds = function (date) {
    return date.toISOString().replace(/\.\d+Z$/, "Z");
  };

  IT.duration = function (seconds) {
    const s = Math.round(seconds);
    if (s < 120) return s + " s";
    if (s < 7200) return Math.round(s / 60) + " min";
    if (s < 172800) return Math.round(s / 3600) + " h";
    return Math.round(s / 86400) + " d";
  };

  IT.shortDigest = function (digest) {
    if (!digest) return "";
    const [algo, hex] = String(digest).includes(":") ? digest.split(":", 2) : ["", digest];
    return (algo ? algo + ":" : "") + hex.slice(0, 12);
  };

  // Regex-quote a name: the API's namespace filter is a regex matched fully.
  IT.regexQuote = (s) => String(s).replace(/[.*+?^${}()|[\]\\]/g, "\\$&");
  IT.regexUnquote = (s) => String(s).replace(/\\(.)/g, "$1");

  IT.workloadId = (r) => [r.cluster, r.namespace, r.workload_kind, r.workload].join("/");

  // A link to the workload page, keeping the range the user is looking at.
  IT.workloadLink = function (id, range, label) {
    const p = new URLSearchParams({ workload: id });
    for (const key of ["since", "from", "to"]) if (range && range[key]) p.set(key, range[key]);
    return IT.el("a", { href: "/workload?" + p, class: "wl-link", text: label || id });
  };

  // "registry/repo:tag" → ["registry/repo", "tag"] (tag "" when none; a digest is dropped).
  IT.splitRef = function (image) {
    const ref = String(image || "").split("@")[0];
    const slash = ref.lastIndexOf("/");
    const colon = ref.lastIndexOf(":");
    return colon > slash ? [ref.slice(0, colon), ref.slice(colon + 1)] : [ref, ""];
  };

  // An image reference in a <code class="image">: it wraps only after a "/", ":" or "@" (each
  // part between them is one unbreakable run, a <wbr> after each separator), never inside a
  // name; its text is the reference unchanged (copy, search and screen readers alike). Only a
  // part longer than a column can be (a digest's 64 hex digits) may break inside.
  IT.imageCode = function (image, props) {
    const code = IT.el("code", Object.assign({ class: "image" }, props || {}));
    String(image).split(/(?<=[/:@])/).forEach((part, i) => {
      if (i) code.append(IT.el("wbr", {}));
      code.append(IT.el("span", { class: part.length > 40 ? "seg long" : "seg", text: part }));
    });
    return code;
  };

  // What a change did, compactly: "repo  1.2 → 1.3" for one repository, else both references.
  IT.transition = function (c) {
    const [fromRepo, fromTag] = IT.splitRef(c.from_image);
    const [toRepo, toTag] = IT.splitRef(c.to_image);
    const digest = (d) => IT.el("span", { class: "mono muted", title: d || "",
      text: IT.shortDigest(d) || "?" });
    if (c.from_image && c.to_image && fromRepo === toRepo) {
      const repo = IT.imageCode(toRepo);
      if (fromTag === toTag) {
        return IT.el("span", { class: "transition" }, repo, ":" + toTag + " ",
          digest(c.from_digest), " → ", digest(c.to_digest));
      }
      return IT.el("span", { class: "transition" }, repo, " ",
        IT.el("code", { class: "tag", text: fromTag || "—" }), " → ",
        IT.el("code", { class: "tag", text: toTag || "—" }));
    }
    return IT.el("span", { class: "transition" },
      IT.imageCode(c.from_image || "—"), " → ", IT.imageCode(c.to_image || "—"));
  };

  // ------------------------------------------------------------------ rollout states

  // How a change ended, for the "Finished" column (Changes page and workload page alike):
  // its time; "aborted <time>", "superseded <time>" or "failed <time>" (when it was given up)
  // with a badge; a "stuck" badge for a rollout whose new pods are not running; "in progress"
  // only while it is. A rollout whose pods waited says why under it (IT.attemptText).
  // An answer without `state` (an older server) shows what `finished` says.
  const ENDED_TITLES = {
    aborted: "the workload went back to the version it started from",
    superseded: "another version (or the workload's removal) overtook this rollout",
    failed: "the new version's pods never ran (or only crash-looped): given up",
  };
  IT.changeEnd = function (c) {
    const state = typeof c.state === "string" ? c.state : null;
    const why = IT.attemptText(c);
    const node = IT.el("span", { class: "change-end" });
    if (Object.prototype.hasOwnProperty.call(ENDED_TITLES, state)) {
      node.append(IT.el("span", { class: "badge cut-short cut-" + state, text: state,
        title: ENDED_TITLES[state] + (why ? " — " + why : "") }), " " + IT.time(c.ended));
    } else if (state === "stuck") {
      node.append(IT.el("span", { class: "badge cut-short cut-stuck", text: "stuck",
        title: "in progress, its new pods not running" + (why ? " — " + why : "") }));
    } else if (c.finished) {
      node.append(IT.time(c.finished));
    } else if (state === null || state === "in-progress") {
      node.classList.add("in-progress");
      node.append("in progress");
    } else {
      node.classList.add("muted");
      node.append(state);
    }
    // The space keeps the cell's text readable as one line too (copy, screen readers).
    if (why) node.append(" ", IT.el("span", { class: "attempt", text: why }));
    return node;
  };

  // Why a rollout's new pods did not run, as one line of plain text ("" when they did not
  // wait): "ImagePullBackOff · 0 of 1 pods ran", "waited 10 min: CreateContainerConfigError".
  // The pod count is left out once all of them ran.
  IT.attemptText = function (c) {
    const reasons = Array.isArray(c.reasons) ? c.reasons.map(String).join(", ") : "";
    const waited = typeof c.waited === "number" && c.waited > 0
      ? "waited " + IT.duration(c.waited) : "";
    let text = waited && reasons ? waited + ": " + reasons : waited || reasons;
    const pods = typeof c.pods === "number" ? c.pods : null;
    const ran = typeof c.pods_ran === "number" ? c.pods_ran : 0;
    if (text && pods !== null && ran < pods) text += " · " + ran + " of " + pods + " pods ran";
    return text;
  };

  // Newest first by when a change started: a rollout still in progress (finished null) is
  // not newer than one that started later.
  IT.newestFirst = function (changes) {
    const t = (v) => (v ? new Date(v).getTime() : -Infinity);
    return changes.slice().sort((a, b) => t(b.started) - t(a.started) ||
      t(b.finished || b.ended) - t(a.finished || a.ended));
  };

  // A row of /api/v1/versions or /api/v1/workloads whose counts include last known values of
  // a silent cluster.
  IT.staleBadge = function (row) {
    if (!row || row.stale !== true) return null;
    // Versions rows say how many of their containers are last known values.
    const some = typeof row.stale_containers === "number" && row.stale_containers < row.containers;
    return IT.el("span", { class: "badge stale",
      text: some ? "stale " + row.stale_containers + " of " + row.containers : "stale",
      title: "last known values from a cluster that has gone silent" });
  };

  IT.kindBadge = function (kind) {
    const known = ["upgrade", "downgrade", "rollback", "tag-repush", "added", "removed", "other",
      "cluster-gone"];
    const cls = known.includes(kind) ? kind : "other";
    return IT.el("span", { class: "badge kind-" + cls, text: kind });
  };

  // ------------------------------------------------------------------ the JSON API

  class ApiError extends Error {
    constructor(message, hint, status) {
      super(message);
      this.hint = hint || null;
      this.status = status;
    }
  }
  IT.ApiError = ApiError;

  IT.api = async function (path, params, signal) {
    const qs = params ? params.toString() : "";
    let response;
    try {
      response = await fetch(path + (qs ? "?" + qs : ""), {
        signal,
        headers: { Accept: "application/json" },
      });
    } catch (err) {
      if (err && err.name === "AbortError") throw err;
      throw new ApiError("the imagetrail server did not answer", "is it still running?", 0);
    }
    let body = null;
    try {
      body = await response.json();
    } catch (err) {
      if (err && err.name === "AbortError") throw err;
      body = null;
    }
    if (!response.ok) {
      const message =
        body && typeof body.error === "string" ? body.error : "HTTP " + response.status;
      throw new ApiError(message, body && typeof body.hint === "string" ? body.hint : null,
        response.status);
    }
    if (body === null) throw new ApiError("the server's answer is not JSON", null, response.status);
    return body;
  };

  // ------------------------------------------------------------------ banner

  function bannerPart(id) {
    return document.getElementById(id);
  }

  function refreshBanner() {
    const banner = document.getElementById("banner");
    if (!banner) return;
    const parts = banner.querySelectorAll("p, li");
    banner.hidden = !Array.from(parts).some((p) => p.textContent !== "");
  }

  IT.showError = function (err) {
    const part = bannerPart("banner-error");
    if (!part) return;
    const text = err instanceof ApiError ? err.message : "error in the page: " + err;
    IT.replace(
      part,
      IT.el("strong", { text: err instanceof ApiError && err.status >= 500 ? "Server error: "
        : "Cannot show this: " }),
      text,
      err instanceof ApiError && err.hint
        ? IT.el("span", { class: "hint", text: " — " + err.hint }) : null,
    );
    refreshBanner();
  };

  IT.clearError = function () {
    const part = bannerPart("banner-error");
    if (part) IT.clear(part);
    refreshBanner();
  };

  function showSync(status) {
    const part = bannerPart("banner-sync");
    if (!part) return;
    IT.clear(part);
    const sync = status.sync || {};
    if (sync.last_error) {
      part.append(
        IT.el("strong", { text: "Prometheus unreachable" }),
        " (last try " + IT.time(sync.last_error_at) + "): ",
        IT.el("span", { class: "sync-error", text: sync.last_error }),
        " — showing recorded data up to " + IT.time(status.data_until) + ".",
      );
    } else if (!status.ready) {
      part.append(IT.el("strong", { text: "Not ready: " }), String(status.ready_reason || ""));
    }
    refreshBanner();
  }

  // A minute in UTC, as the silent-cluster banner says it: "2026-11-24 10:02 UTC".
  function minute(iso) {
    const d = new Date(iso);
    if (!iso || Number.isNaN(d.getTime())) return "an unknown time";
    return d.toISOString().slice(0, 16).replace("T", " ") + " UTC";
  }

  // One line per cluster that stopped sending data (status.silent_clusters): the pages show
  // its last known versions marked stale, or nothing of it once it is gone.
  function showSilent(status) {
    const part = bannerPart("banner-silent");
    if (!part) return;
    IT.clear(part);
    const silent = Array.isArray(status.silent_clusters) ? status.silent_clusters : [];
    for (const s of silent) {
      if (!s || typeof s !== "object") continue;
      const seconds = Number(s.silent_for_seconds);
      const since = minute(s.last_data);
      const name = IT.el("strong", { class: "cluster", text: String(s.cluster) });
      part.append(s.gone === true
        ? IT.el("li", { class: "silent gone", "data-cluster": String(s.cluster) }, name,
          " gone: silent since " + since + ", no longer shown")
        : IT.el("li", { class: "silent", "data-cluster": String(s.cluster) }, name,
          ": no data since " + since +
          (Number.isFinite(seconds) ? " (" + IT.duration(seconds) + ")" : "") +
          " — its last known versions are shown, marked stale"));
    }
    refreshBanner();
  }

  function showStatus(status) {
    showSync(status);
    showSilent(status);
  }

  let statusPromise = null;
  IT.status = function () {
    if (!statusPromise) {
      statusPromise = IT.api("/api/v1/status").then((st) => {
        showStatus(st);
        if ((st.sync && st.sync.enabled) || Array.isArray(st.silent_clusters)) {
          // The background sync may recover or fail later, a cluster fall silent or come
          // back: keep the banner current.
          window.setInterval(() => {
            IT.api("/api/v1/status").then(showStatus, () => {});
          }, 30000);
        }
        return st;
      });
    }
    return statusPromise;
  };

  // ------------------------------------------------------------------ URL state

  // spec maps a URL key to "list" (repeatable) or "string".
  IT.COMMON = { cluster: "list", namespace: "list", workload: "string", since: "string",
    from: "string", to: "string" };

  IT.stateFromURL = function (spec) {
    const p = new URLSearchParams(window.location.search);
    const state = {};
    for (const [key, type] of Object.entries(spec)) {
      state[key] = type === "list" ? p.getAll(key).filter((v) => v !== "") : p.get(key) || "";
    }
    return state;
  };

  IT.params = function (state, keys) {
    const p = new URLSearchParams();
    for (const key of keys) {
      const value = state[key];
      if (Array.isArray(value)) for (const v of value) p.append(key, v);
      else if (value) p.set(key, value);
    }
    return p;
  };

  // The range the API should use: the URL's, or the page's default preset.
  IT.rangeParams = function (state, defaultSince) {
    const p = new URLSearchParams();
    if (state.from || state.to) {
      if (state.from) p.set("from", state.from);
      if (state.to) p.set("to", state.to);
    } else p.set("since", state.since || defaultSince);
    return p;
  };

  // Filters + range, as the API wants them.
  IT.apiParams = function (state, defaultSince, extra) {
    const p = IT.params(state, ["cluster", "namespace", "workload"]);
    if (defaultSince !== null) {
      for (const [k, v] of IT.rangeParams(state, defaultSince)) p.set(k, v);
    }
    for (const [k, v] of Object.entries(extra || {})) {
      if (Array.isArray(v)) for (const x of v) p.append(k, x);
      else if (v !== null && v !== undefined && v !== "") p.set(k, v);
    }
    return p;
  };

  // ------------------------------------------------------------------ page runner

  // IT.page({spec, setup(status, page), sync(state), render(state, signal), result})
  //   setup: build the controls once (status may be null when /status failed);
  //   sync: show the state in the controls; render: fetch and draw.
  IT.page = function (opts) {
    const spec = opts.spec;
    const keys = Object.keys(spec);
    const page = { state: IT.stateFromURL(spec) };
    let controller = null;

    async function draw() {
      if (controller) controller.abort();
      const mine = new AbortController();
      controller = mine;
      const result = opts.result;
      result.setAttribute("aria-busy", "true");
      document.body.classList.add("loading");
      IT.clearError();
      try {
        await opts.render(page.state, mine.signal);
      } catch (err) {
        if (err && err.name === "AbortError") return;
        IT.showError(err);
        if (opts.failed) opts.failed(err, page.state);
        else {
          IT.replace(result, IT.el("p", { class: "empty error",
            text: "Nothing to show: " + (err.message || err) }));
        }
      } finally {
        if (controller === mine) {
          result.setAttribute("aria-busy", "false");
          document.body.classList.remove("loading");
          document.body.dataset.rendered = String(Number(document.body.dataset.rendered || 0) + 1);
        }
      }
    }

    page.update = function (changes) {
      page.state = Object.assign({}, page.state, changes);
      const qs = IT.params(page.state, keys).toString();
      const url = window.location.pathname + (qs ? "?" + qs : "");
      if (url !== window.location.pathname + window.location.search) {
        window.history.pushState(null, "", url);
      }
      opts.sync(page.state);
      return draw();
    };
    page.redraw = draw;

    window.addEventListener("popstate", () => {
      page.state = IT.stateFromURL(spec);
      opts.sync(page.state);
      draw();
    });

    IT.status()
      .catch((err) => {
        IT.showError(err);
        return null;
      })
      .then((status) => {
        page.status = status;
        opts.setup(status, page);
        opts.sync(page.state);
        return draw();
      });
    // Light/dark switch while open: charts take their colours from the stylesheet.
    window.matchMedia("(prefers-color-scheme: dark)").addEventListener("change", () => {
      if (opts.recolor) opts.recolor();
    });
    return page;
  };

  // ------------------------------------------------------------------ filter controls

  const PRESETS = ["1h", "6h", "24h", "7d", "30d", "90d"];

  function field(label, control, extra) {
    return IT.el("div", { class: "field" },
      IT.el("label", { for: control.id, text: label }), control, extra || null);
  }

  function selectedValues(select) {
    return Array.from(select.selectedOptions).map((o) => o.value);
  }

  // Make a multi-select show `values`, adding options for values it does not list (a
  // shared link may name a cluster that is gone, or a namespace regex).
  function showSelected(select, values, label) {
    const wanted = new Set(values);
    for (const option of select.options) option.selected = wanted.has(option.value);
    for (const value of values) {
      if (!Array.from(select.options).some((o) => o.value === value)) {
        select.appendChild(IT.el("option", { value, selected: true, text: label(value) }));
      }
    }
  }

  // Cluster/namespace/workload filters and either a time range (presets + custom) or an
  // instant. onChange(changes) receives state changes.
  IT.filters = function (host, status, opts) {
    const clusters = (status && status.clusters) || [];
    const namespaces = (status && status.namespaces) || {};
    const form = IT.el("form", { class: "filters", role: "search", "aria-label": "Filters" });
    form.addEventListener("submit", (ev) => ev.preventDefault());

    const cluster = IT.el("select", { id: "f-cluster", multiple: true,
      size: Math.min(4, Math.max(2, clusters.length)), "aria-describedby": "f-multi-help" });
    for (const c of clusters) cluster.appendChild(IT.el("option", { value: c, text: c }));
    const namespace = IT.el("select", { id: "f-namespace", multiple: true, size: 4,
      "aria-describedby": "f-multi-help" });

    function fillNamespaces(keep) {
      const chosen = selectedValues(cluster);
      const names = new Set();
      for (const c of chosen.length ? chosen : clusters) for (const n of namespaces[c] || []) {
        names.add(n);
      }
      IT.clear(namespace);
      for (const n of Array.from(names).sort()) {
        namespace.appendChild(IT.el("option", { value: IT.regexQuote(n), text: n }));
      }
      showSelected(namespace, keep, (v) => "regex: " + v);
      namespace.size = Math.min(6, Math.max(3, namespace.options.length));
    }

    const workload = IT.el("input", { id: "f-workload", type: "search", list: "f-workload-list",
      placeholder: "name, namespace/name or full id", autocomplete: "off", spellcheck: "false" });
    const datalist = IT.el("datalist", { id: "f-workload-list" });
    let listed = false;
    workload.addEventListener("focus", () => {
      if (listed) return;
      listed = true;
      IT.api("/api/v1/workloads").then((rows) => {
        const ids = new Set(rows.map(IT.workloadId));
        for (const id of Array.from(ids).sort()) {
          datalist.appendChild(IT.el("option", { value: id }));
        }
      }, () => {});
    });

    const clearButton = IT.el("button", { type: "button", class: "secondary", id: "f-clear",
      text: "Clear filters" });

    form.append(
      field("Clusters", cluster),
      field("Namespaces", namespace),
      field("Workload", workload, datalist),
    );
    const ctl = { form, cluster, namespace, workload };

    if (opts.range) {
      const presets = IT.el("div", { class: "presets", role: "group", "aria-label": "Time range" });
      ctl.presetButtons = {};
      for (const preset of PRESETS.concat(["custom"])) {
        const b = IT.el("button", { type: "button", class: "preset", "aria-pressed": "false",
          "data-preset": preset, text: preset === "custom" ? "Custom…" : preset });
        ctl.presetButtons[preset] = b;
        presets.appendChild(b);
      }
      const from = IT.el("input", { id: "f-from", type: "text", spellcheck: "false",
        placeholder: "2024-05-01T00:00:00Z or 3d", autocomplete: "off" });
      const to = IT.el("input", { id: "f-to", type: "text", spellcheck: "false",
        placeholder: "empty = now", autocomplete: "off" });
      const apply = IT.el("button", { type: "submit", id: "f-apply", text: "Apply" });
      const custom = IT.el("div", { class: "custom", hidden: true },
        field("From", from), field("To", to), apply);
      const rangeBox = IT.el("div", { class: "field range" },
        IT.el("span", { class: "label", id: "f-range-label", text: "Time range (UTC)" }),
        presets, custom);
      presets.setAttribute("aria-labelledby", "f-range-label");
      form.append(rangeBox);
      Object.assign(ctl, { from, to, custom });

      presets.addEventListener("click", (ev) => {
        const b = ev.target.closest("button[data-preset]");
        if (!b) return;
        if (b.dataset.preset === "custom") {
          custom.hidden = false;
          markPreset("custom");
          from.focus();
          return;
        }
        opts.onChange({ since: b.dataset.preset === opts.defaultSince ? "" : b.dataset.preset,
          from: "", to: "" });
      });
      form.addEventListener("submit", () => {
        if (custom.hidden) return;
        const f = from.value.trim();
        const t = to.value.trim();
        if (!f && !t) return;
        opts.onChange({ since: "", from: f, to: t });
      });
    }
    if (opts.at) {
      const at = IT.el("input", { id: "f-at", type: "text", spellcheck: "false",
        placeholder: "latest data", autocomplete: "off" });
      const latest = IT.el("button", { type: "button", class: "secondary", id: "f-latest",
        text: "Latest" });
      form.append(field("At instant (UTC)", at, latest));
      at.addEventListener("change", () => opts.onChange({ at: at.value.trim() }));
      latest.addEventListener("click", () => opts.onChange({ at: "" }));
      ctl.at = at;
    }
    form.append(IT.el("div", { class: "field actions" }, clearButton),
      IT.el("p", { id: "f-multi-help", class: "help", hidden: true,
        text: "Ctrl/⌘ or Shift with click or arrow keys selects several; none = all." }));

    function markPreset(name) {
      for (const [key, b] of Object.entries(ctl.presetButtons)) {
        b.setAttribute("aria-pressed", String(key === name));
      }
    }

    cluster.addEventListener("change", () => {
      fillNamespaces(selectedValues(namespace));
      opts.onChange({ cluster: selectedValues(cluster), namespace: selectedValues(namespace) });
    });
    namespace.addEventListener("change", () =>
      opts.onChange({ namespace: selectedValues(namespace) }));
    workload.addEventListener("change", () => opts.onChange({ workload: workload.value.trim() }));
    clearButton.addEventListener("click", () =>
      opts.onChange({ cluster: [], namespace: [], workload: "" }));

    host.appendChild(form);

    ctl.set = function (state) {
      showSelected(cluster, state.cluster, (v) => v);
      fillNamespaces(state.namespace);
      workload.value = state.workload || "";
      if (opts.range) {
        const custom = Boolean(state.from || state.to);
        ctl.from.value = state.from || "";
        ctl.to.value = state.to || "";
        ctl.custom.hidden = !custom;
        const since = state.since || opts.defaultSince;
        markPreset(custom ? "custom" : PRESETS.includes(since) ? since : "custom");
        if (!custom && !PRESETS.includes(since)) {
          ctl.custom.hidden = false;
          ctl.from.value = since;
        }
      }
      if (opts.at) ctl.at.value = state.at || "";
    };
    return ctl;
  };

  // ------------------------------------------------------------------ charts

  // Chart colours follow the page's light/dark stylesheet.
  IT.chartTheme = function () {
    const css = getComputedStyle(document.body);
    const v = (name, fallback) => css.getPropertyValue(name).trim() || fallback;
    return {
      fg: v("--fg", "#1b1f24"),
      muted: v("--muted", "#59636e"),
      grid: v("--grid", "#e3e6ea"),
      bg: v("--panel", "#ffffff"),
      accent: v("--accent", "#0b63c5"),
      warn: v("--warn", "#c2410c"),
    };
  };

  IT.baseLayout = function (extra) {
    const t = IT.chartTheme();
    return Object.assign({
      paper_bgcolor: "rgba(0,0,0,0)",
      plot_bgcolor: "rgba(0,0,0,0)",
      font: { color: t.fg, family: "system-ui, -apple-system, Segoe UI, sans-serif", size: 12 },
      hoverlabel: { bgcolor: t.bg, bordercolor: t.muted, font: { color: t.fg } },
      margin: { l: 10, r: 20, t: 10, b: 40 },
    }, extra);
  };

  IT.plotConfig = { displaylogo: false, responsive: true,
    modeBarButtonsToRemove: ["select2d", "lasso2d", "autoScale2d"] };

  // Cividis (readable with every kind of colour blindness). On a dark page its darkest blues
  // would vanish into the background, so dark mode starts the scale at its mid-grey-blue.
  const CIVIDIS = ["#00204c", "#002a66", "#00346e", "#273f6c", "#3c4a6b", "#4c556b", "#5b5f6d",
    "#686a70", "#757575", "#838178", "#928c78", "#a19876", "#b0a572", "#c0b16d", "#d1bf66",
    "#e1cc5c", "#f3db4f", "#ffe945"];
  IT.heatScale = function () {
    const dark = window.matchMedia("(prefers-color-scheme: dark)").matches;
    const stops = dark ? CIVIDIS.slice(5) : CIVIDIS;
    return stops.map((c, i) => [i / (stops.length - 1), c]);
  };

  // Okabe–Ito: a qualitative palette that colour-blind readers can tell apart.
  IT.PALETTE = ["#0072B2", "#E69F00", "#009E73", "#CC79A7", "#56B4E9", "#D55E00", "#F0E442",
    "#000000", "#999999"];

  // Version colours: Okabe–Ito without black and grey, then Paul Tol's wine, teal, olive and
  // purple; every one readable on the light and the dark page. 11 entries: a prime spreads
  // the hash evenly.
  IT.VERSION_PALETTE = ["#0072B2", "#E69F00", "#009E73", "#CC79A7", "#56B4E9", "#D55E00",
    "#F0E442", "#882255", "#44AA99", "#999933", "#AA4499"];

  // 32-bit FNV-1a over the UTF-8 bytes of a string.
  IT.fnv1a = function (text) {
    let h = 0x811c9dc5;
    for (const byte of new TextEncoder().encode(String(text))) {
      h ^= byte;
      h = Math.imul(h, 0x01000193) >>> 0;
    }
    return h >>> 0;
  };

  // The colour of a version, from its image reference (a digest after "@" is ignored): the
  // same on every page, chart and range, whatever else is shown next to it. Every chart and
  // table that colours versions calls this.
  IT.versionColor = function (image) {
    const ref = String(image === null || image === undefined ? "" : image).split("@")[0];
    return IT.VERSION_PALETTE[IT.fnv1a(ref) % IT.VERSION_PALETTE.length];
  };

  // A small square in a version's colour, beside its name (the name is always there too).
  IT.swatch = function (image) {
    const node = IT.el("span", { class: "swatch", "aria-hidden": "true" });
    node.style.backgroundColor = IT.versionColor(image);
    return node;
  };

  // A plotly axis date ("2024-05-01 12:30:05.12", UTC wall time) as RFC 3339.
  IT.plotlyDate = function (value) {
    const s = String(value).trim().replace(" ", "T");
    const d = new Date(/[zZ]|[+-]\d\d:?\d\d$/.test(s) ? s : s + "Z");
    return Number.isNaN(d.getTime()) ? null : IT.isoSeconds(d);
  };
})();
