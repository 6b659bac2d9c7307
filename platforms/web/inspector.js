// The Parley inspector: a single page over /inspect/api (see docs/inspector.md).
// Routes: #/ (the sessions list, its filters in the hash's query) and #/session/ROW.
// Every value from the database goes into the page through textContent or attributes set
// with setAttribute on elements made here: never as markup.
"use strict";
(() => {
  const token = new URLSearchParams(location.search).get("token");
  const view = document.getElementById("view");
  const alertBox = document.getElementById("alert");
  const liveBadge = document.getElementById("live");

  // ---------------------------------------------------------------- small helpers ----
  // el("div", {class: "x", "data-id": 3}, child, "text", ...): children are nodes or text.
  function el(tag, attrs, ...children) {
    const e = document.createElement(tag);
    if (attrs) {
      for (const [k, v] of Object.entries(attrs)) {
        if (v === undefined || v === null || v === false) continue;
        if (k === "class") e.className = v;
        else if (k === "text") e.textContent = v;
        else if (k.startsWith("on")) e.addEventListener(k.slice(2), v);
        else e.setAttribute(k, v === true ? "" : String(v));
      }
    }
    for (const c of children) add(e, c);
    return e;
  }
  function add(parent, c) {
    if (c === undefined || c === null || c === false) return;
    if (Array.isArray(c)) { for (const x of c) add(parent, x); return; }
    parent.appendChild(c instanceof Node ? c : document.createTextNode(String(c)));
  }
  // replaceChildren would turn null into the text "null": skip the missing parts instead.
  function setChildren(parent, ...children) { parent.replaceChildren(); add(parent, children); }
  const text = v => (v === undefined || v === null) ? "" : String(v);
  const plural = (n, one, many) => n + " " + (n === 1 ? one : (many || one + "s"));

  function withToken(path, params) {
    const u = new URL(path, location.origin);
    if (params) for (const [k, v] of Object.entries(params)) if (v !== undefined && v !== null && v !== "") u.searchParams.set(k, v);
    if (token) u.searchParams.set("token", token);
    return u;
  }
  async function api(path, params) {
    const res = await fetch(withToken(path, params), { headers: { Accept: "application/json" }, cache: "no-store" });
    let body = null;
    try { body = await res.json(); } catch { /* not JSON: reported below */ }
    if (!res.ok) throw new Error((body && body.error) || ("HTTP " + res.status + " from " + path));
    if (!body) throw new Error("the server's answer to " + path + " was not JSON");
    return body;
  }
  function showError(err) {
    alertBox.hidden = !err;
    alertBox.textContent = err ? String(err.message || err) : "";
  }
  function setLive(state, label) { liveBadge.dataset.state = state; liveBadge.textContent = label; }
  function fmtMs(ms) { return ms >= 1000 ? (ms / 1000).toFixed(2) + " s" : Math.round(ms) + " ms"; }
  function pretty(v) {
    if (typeof v === "string") {
      try { return JSON.stringify(JSON.parse(v), null, 2); } catch { return v; }
    }
    return JSON.stringify(v, null, 2);
  }
  function parseJson(s) { try { return JSON.parse(s); } catch { return null; } }

  // ---------------------------------------------------------------- live socket ----
  // One WebSocket at a time; reconnects with backoff (0.5 s doubling to 15 s) and resumes
  // from what it has (url() is asked again each time). Closed on route change.
  class live {
    constructor(url, onFrame) {
      this.url = url; this.onFrame = onFrame; this.retry = 0; this.ws = null; this.timer = null; this.stopped = false;
      this.open();
    }
    open() {
      if (this.stopped) return;
      setLive("connecting", "connecting…");
      const u = this.url();
      u.protocol = location.protocol === "https:" ? "wss:" : "ws:";
      let ws;
      try { ws = new WebSocket(u); } catch (e) { this.later(); return; }
      this.ws = ws;
      ws.onopen = () => { this.retry = 0; setLive("open", "live"); };
      ws.onmessage = ev => {
        const frame = parseJson(ev.data);
        if (frame) this.onFrame(frame); else console.warn("inspector: a live frame that is not JSON");
      };
      ws.onclose = () => { if (this.ws === ws) { this.ws = null; this.later(); } };
      ws.onerror = () => { /* onclose follows */ };
    }
    later() {
      if (this.stopped) return;
      const wait = Math.min(15000, 500 * 2 ** this.retry++);
      setLive("closed", "reconnecting in " + Math.round(wait / 1000) + " s");
      this.timer = setTimeout(() => this.open(), wait);
    }
    stop() {
      this.stopped = true;
      clearTimeout(this.timer);
      if (this.ws) { const ws = this.ws; this.ws = null; ws.close(); }
      setLive("off", "not live");
    }
  }

  // ---------------------------------------------------------------- router ----
  let current = null;  // {stop()} of the view on screen
  let listHash = "#/";  // the list as last seen (with its filters), for the back link
  function route() {
    if (current) current.stop();
    current = null;
    showError(null);
    const hash = location.hash || "#/";
    const m = /^#\/session\/(\d+)/.exec(hash);
    if (!m) listHash = hash;
    view.replaceChildren();
    current = m ? sessionView(Number(m[1])) : listView(new URLSearchParams(hash.split("?")[1] || ""));
  }
  window.addEventListener("hashchange", route);
  // "/" jumps to the search box (where there is one), as on most sites with a search.
  document.addEventListener("keydown", e => {
    if (e.key !== "/" || e.ctrlKey || e.metaKey || e.altKey) return;
    const t = e.target;
    if (t instanceof HTMLInputElement || t instanceof HTMLTextAreaElement || t instanceof HTMLSelectElement) return;
    const q = document.getElementById("q");
    if (q) { e.preventDefault(); q.focus(); }
  });
  // The token rides in the page's own query, never in the hash: links keep it.
  function sessionLink(row, label) { return el("a", { href: "#/session/" + row, class: "session-link" }, label); }

  // ================================================================ sessions list ====
  const PAGE = 50;
  function listView(q) {
    let stopped = false, socket = null, refreshTimer = null;
    const get = k => q.get(k) || "";
    document.title = "Sessions · Parley inspector";
    const h1 = el("h1", { tabindex: "-1" }, "Sessions");
    const search = el("input", { type: "search", id: "q", name: "q", value: get("q"), placeholder: "session id, #tag or user", "aria-keyshortcuts": "/",
                                 "aria-describedby": "q-help", autocomplete: "off" });
    const state = el("input", { type: "text", id: "f-state", name: "state", value: get("state"), placeholder: "any", size: 10 });
    const agent = el("select", { id: "f-agent", name: "agent" }, el("option", { value: "" }, "all agents"));
    const since = el("input", { type: "text", id: "f-since", name: "since", value: get("since"), placeholder: "2026-11-29T09:00", size: 16 });
    const until = el("input", { type: "text", id: "f-until", name: "until", value: get("until"), placeholder: "2026-11-29", size: 16 });
    const form = el("form", { class: "filters", role: "search", "aria-label": "Find sessions" },
      el("label", null, "Search", search),
      el("label", null, "State", state),
      el("label", null, "Agent", agent),
      el("label", null, "Active since", since),
      el("label", null, "Active until", until),
      el("button", { type: "submit", class: "primary" }, "Search"),
      el("button", { type: "button", onclick: () => { location.hash = "#/"; } }, "Clear"));
    const help = el("p", { id: "q-help", class: "muted help" },
      "An exact session id, a tag such as #1a2b3c4d, or part of a user name. Times are as stored, in UTC (a prefix like 2026-11-29 works).");
    const info = el("p", { class: "summary-line", "aria-live": "polite" }, "Loading…");
    const table = el("table", { class: "sessions" },
      el("caption", { class: "muted" },
         "Newest activity first."),
      el("thead", null, el("tr", null,
        ["Session", "User", "Agent", "Platform", "State", "Started", "Last activity"].map(t => el("th", { scope: "col" }, t)),
        ["Turns", "Errors", "Tokens"].map(t => el("th", { scope: "col", class: "num" }, t)))));
    const tbody = el("tbody");
    table.appendChild(tbody);
    const prev = el("button", { type: "button", disabled: true }, "← Newer");
    const next = el("button", { type: "button", disabled: true }, "Older →");
    const pageInfo = el("span", { class: "muted" });
    view.append(h1, form, help, info, el("div", { class: "table-wrap" }, table), el("nav", { class: "pager", "aria-label": "Pages" }, prev, pageInfo, next));
    h1.focus();

    const offset = Math.max(0, parseInt(get("offset"), 10) || 0);
    const go = changes => {
      const p = new URLSearchParams(q);
      for (const [k, v] of Object.entries(changes)) if (v) p.set(k, v); else p.delete(k);
      const s = p.toString();
      location.hash = "#/" + (s ? "?" + s : "");
    };
    form.addEventListener("submit", e => {
      e.preventDefault();
      go({ q: search.value.trim(), state: state.value.trim(), agent: agent.value, since: since.value.trim(),
           until: until.value.trim(), offset: "" });
    });
    agent.addEventListener("change", () => form.requestSubmit());
    prev.addEventListener("click", () => go({ offset: String(Math.max(0, offset - PAGE)) || "" }));
    next.addEventListener("click", () => go({ offset: String(offset + PAGE) }));

    async function load() {
      try {
        const r = await api("/inspect/api/sessions", { q: get("q"), user: get("user"), state: get("state"), agent: get("agent"),
                                                       since: get("since"), until: get("until"), offset, limit: PAGE });
        if (stopped) return;
        if (agent.options.length === 1)
          for (const a of r.agents || []) agent.appendChild(el("option", { value: a, selected: a === get("agent") }, a));
        tbody.replaceChildren(...r.sessions.map(sessionRow));
        const first = r.sessions.length ? r.offset + 1 : 0;
        const last = r.offset + r.sessions.length;
        info.textContent = r.total === 0 ? "No sessions match." : plural(r.total, "session") + (r.total > r.sessions.length ? ", showing " + first + "–" + last : "");
        pageInfo.textContent = r.total ? first + "–" + last + " of " + r.total : "";
        prev.disabled = r.offset === 0;
        next.disabled = last >= r.total;
      } catch (e) {
        if (!stopped) { showError(e); info.textContent = ""; }
      }
    }
    function sessionRow(s) {
      return el("tr", { "data-row": s.row },
        el("td", null, sessionLink(s.row, el("span", { class: "mono" }, text(s.tag))),
           s.name ? el("span", { class: "muted" }, " " + s.name) : null),
        el("td", { class: "user", title: text(s.user) }, text(s.user)),
        el("td", null, text(s.agent)),
        el("td", null, text(s.platform)),
        el("td", null, el("span", { class: "mono" }, text(s.state)), " ",
           s.closed !== null && s.closed !== undefined ? el("span", { class: "badge closed", title: "closed: " + s.closed }, "closed") : null),
        el("td", null, el("time", null, text(s.started))),
        el("td", null, el("time", null, text(s.last_activity))),
        el("td", { class: "num turns" }, text(s.turns)),
        el("td", { class: "num errors", "data-count": s.errors }, text(s.errors)),
        el("td", { class: "num tokens" }, text(s.tokens)));
    }
    load();
    // The list refreshes when the server says something changed (at most every 2 s).
    socket = new live(() => withToken("/inspect/live"), frame => {
      if (!frame.sessions_changed || refreshTimer) return;
      refreshTimer = setTimeout(() => { refreshTimer = null; if (!stopped) load(); }, 2000);
    });
    return { stop() { stopped = true; clearTimeout(refreshTimer); socket.stop(); } };
  }

  // ================================================================ one session ====
  const FETCH = 1000;     // rows per request
  const BUDGET_MS = 12;   // time spent making rows per animation frame (the rest: layout, input)
  const KINDS = [["chat", "Chat"], ["intent", "Intents"], ["transition", "Transitions"], ["event", "Events"],
                 ["reasoning", "Reasoning"], ["agent_message", "Agent messages"]];
  // Chat rows the reasoning state streams to the chat client: the reasoning rows hold the
  // same steps with more detail, so the timeline shows those instead.
  const STREAMED = new Set(["reasoning_step", "task_list_update"]);

  function sessionView(row) {
    let stopped = false, socket = null, lastId = 0, diagramTimer = null;
    const queue = [];         // rows fetched, not yet rendered
    let rendering = false;
    const runs = new Map();   // run_id -> run group (see runGroup)
    const replyRuns = new Map(); // chat id -> [run groups] (from reasoning rows' chat_id)
    let unlinkedRuns = [];    // runs written live with no chat_id yet: the next bot reply closes them

    document.title = "Session · Parley inspector";
    const h1 = el("h1", { tabindex: "-1" }, "Session ", el("span", { class: "mono" }, "row " + row));
    const head = el("dl", { class: "session-head", "aria-label": "Session" });
    const timeline = el("ol", { class: "timeline", "aria-label": "Timeline" });
    const status = el("p", { class: "loading", "aria-live": "polite" }, "Loading…");
    const kindBoxes = el("fieldset", { class: "kinds" },
      el("legend", { class: "muted" }, "Show:"),
      KINDS.map(([k, label]) => el("label", null,
        el("input", { type: "checkbox", checked: true, "data-kind": k, onchange: e => {
          timeline.classList.toggle("hide-" + k, !e.target.checked);
        } }), label)));
    const openRuns = open => () => { for (const g of runs.values()) g.details.open = open; };
    // Errors and warnings in timeline order (events, and entries inside runs), one per click.
    let errorAt = -1;
    function nextError() {
      const all = [...timeline.querySelectorAll(".row.event.error, .row.event.warning, .entry.error, .entry.warning")];
      if (!all.length) { toolNote.textContent = "No errors or warnings in this session."; return; }
      errorAt = (errorAt + 1) % all.length;
      const target = all[errorAt];
      for (const e of timeline.querySelectorAll("[data-current-problem]")) e.removeAttribute("data-current-problem");
      target.setAttribute("data-current-problem", "");
      for (let d = target.closest("details"); d; d = d.parentElement.closest("details")) d.open = true;
      target.scrollIntoView({ block: "center" });
      target.classList.add("flash");
      setTimeout(() => target.classList.remove("flash"), 1500);
      toolNote.textContent = "Problem " + (errorAt + 1) + " of " + all.length + ".";
    }
    const toolNote = el("span", { class: "muted", "aria-live": "polite" });
    const tools = el("div", { class: "kinds" },
      el("button", { type: "button", onclick: openRuns(true) }, "Expand all runs"),
      el("button", { type: "button", onclick: openRuns(false) }, "Collapse all runs"),
      el("button", { type: "button", id: "next-error", onclick: nextError }, "Next error or warning"), toolNote);
    const img = el("img", { id: "diagram", alt: "State diagram of this session's agent: states with visit counts, the path taken and the current state", decoding: "async" });
    const diagramNote = el("p", { class: "muted", hidden: true }, "The diagram could not be drawn (open the SVG link for the server's reason).");
    img.addEventListener("error", () => { diagramNote.hidden = false; });
    img.addEventListener("load", () => { diagramNote.hidden = true; });
    const diagram = el("section", { class: "diagram", "aria-labelledby": "diagram-h" },
      el("h2", { id: "diagram-h" }, "State diagram"),
      el("a", { href: withToken("/inspect/api/diagram.svg", { session: row }).href, target: "_blank", rel: "noopener",
                title: "Open the diagram at full size" }, img), diagramNote,
      el("p", { class: "links" },
        el("a", { href: withToken("/inspect/api/diagram", { session: row, format: "dot" }).href, target: "_blank", rel: "noopener" }, "DOT"),
        el("a", { href: withToken("/inspect/api/diagram", { session: row, format: "mermaid" }).href, target: "_blank", rel: "noopener" }, "Mermaid"),
        el("a", { href: withToken("/inspect/api/diagram.svg", { agent: "" }).href, target: "_blank", rel: "noopener", id: "agent-diagram",
                  hidden: true }, "All sessions")));
    view.append(el("p", { class: "back" }, el("a", { href: listHash }, "← Sessions")), h1, head,
      el("div", { class: "columns" },
        el("section", { "aria-labelledby": "timeline-h" }, el("h2", { id: "timeline-h" }, "Timeline"), kindBoxes, tools, timeline, status),
        diagram));
    h1.focus();
    refreshDiagram();

    function showHead(s) {
      if (!s) return;
      document.title = text(s.tag) + " · Parley inspector";
      const whole = diagram.querySelector("#agent-diagram");
      if (s.agent && whole.hidden) {
        whole.href = withToken("/inspect/api/diagram.svg", { agent: s.agent }).href;
        whole.title = "The agent's diagram with visit counts over all sessions";
        whole.hidden = false;
      }
      h1.replaceChildren("Session ", el("span", { class: "mono", id: "session-tag" }, text(s.tag)));
      const item = (label, value, attrs) => el("div", null, el("dt", null, label), el("dd", attrs || null, value));
      setChildren(head,
        item("Tag", el("span", { class: "mono" }, text(s.tag))),
        item("User", text(s.user) || "—"),
        s.name ? item("Name", text(s.name)) : null,
        item("Agent", text(s.agent)),
        item("Platform", text(s.platform)),
        item("State", el("span", { class: "mono" }, text(s.state)), { id: "session-state", "data-state": text(s.state) }),
        item("Started", el("time", null, text(s.started))),
        item("Last activity", el("time", null, text(s.last_activity))),
        item("Turns", text(s.turns)), item("Errors", text(s.errors)), item("Tokens", text(s.tokens)),
        s.closed !== null && s.closed !== undefined ? item("Closed", text(s.closed) || "yes") : null);
    }
    function refreshDiagram() {
      // Several rows in a burst: one reload.
      clearTimeout(diagramTimer);
      diagramTimer = setTimeout(() => {
        img.src = withToken("/inspect/api/diagram.svg", { session: row, v: lastId || undefined }).href;
      }, lastId ? 300 : 0);
    }

    // ---- fetching: pages of FETCH rows, each rendered in chunks ----
    async function fetchAll() {
      try {
        for (;;) {
          const r = await api("/inspect/api/session/" + row, { after: lastId, limit: FETCH });
          if (stopped) return;
          showHead(r.session);
          enqueue(r.rows);
          if (typeof r.last_id === "number" && r.last_id > lastId) lastId = r.last_id;
          status.textContent = r.more ? "Loading… " + plural(timeline.childElementCount + queue.length, "row") : "";
          if (!r.more || !r.rows.length) break;
        }
        startLive();
      } catch (e) {
        if (stopped) return;
        showError(e);
        status.textContent = "";
      }
    }
    function enqueue(rows) {
      for (const r of rows) queue.push(r);
      if (!rendering) { rendering = true; requestAnimationFrame(renderChunk); }
    }
    function renderChunk() {
      if (stopped) return;
      const frag = document.createDocumentFragment();
      const t0 = performance.now();
      let n = 0;
      while (n < queue.length && (n % 50 || performance.now() - t0 < BUDGET_MS)) {
        const node = renderRow(queue[n++]);
        if (node) frag.appendChild(node);
      }
      queue.splice(0, n);
      // Live rows: follow them when the reader is at the bottom already.
      const atBottom = socket !== null && window.innerHeight + window.scrollY >= document.body.scrollHeight - 40;
      timeline.appendChild(frag);
      if (atBottom) window.scrollTo(0, document.body.scrollHeight);
      if (queue.length) requestAnimationFrame(renderChunk); else rendering = false;
    }

    function startLive() {
      socket = new live(() => withToken("/inspect/live", { session: row, after: lastId }), frame => {
        if (frame.session) showHead(frame.session);
        const rows = (frame.rows || []).filter(r => r.id > lastId);
        if (rows.length) {
          lastId = rows[rows.length - 1].id;
          if (rows.some(r => r.type === "transition")) refreshDiagram();
          enqueue(rows);
        }
        if (typeof frame.last_id === "number" && frame.last_id > lastId) lastId = frame.last_id;
      });
    }

    // ---- rows ----
    function meta(r, ...more) {
      // The time of day (the date is in the header); the stored timestamp on hover.
      const ts = text(r.timestamp);
      return el("div", { class: "meta" }, el("time", { datetime: ts, title: ts }, ts.replace(/^\d{4}-\d\d-\d\d[T ]/, "")),
                " · #" + r.id, more);
    }
    function li(r, cls, ...children) {
      return el("li", { class: "row " + r.type + (cls ? " " + cls : ""), "data-id": r.id, "data-type": r.type }, children);
    }
    function renderRow(r) {
      switch (r.type) {
        case "chat": return renderChat(r);
        case "intent": return renderIntent(r);
        case "transition": return renderTransition(r);
        case "event": return renderEvent(r);
        case "reasoning": return renderReasoning(r);
        case "agent_message": return renderAgentMessage(r);
        default:
          return li(r, "", el("div", { class: "line" }, el("span", { class: "label" }, text(r.type)), " ", el("pre", null, pretty(r))));
      }
    }

    function renderChat(r) {
      if (STREAMED.has(r.message_type)) return null;
      const who = r.is_user ? "user" : "bot";
      const bubble = el("div", { class: "bubble" }, chatContent(r));
      const node = li(r, who, bubble,
        meta(r, r.is_user ? " · user" : " · bot", r.message_type && r.message_type !== "str" && r.message_type !== "text" ? " · " + r.message_type : ""));
      if (r.is_user) {
        unlinkedRuns = [];  // a new turn: runs left without a reply stay so
      } else {
        // Runs linked to this reply by chat_id, or (live) the runs just written without one.
        const linked = replyRuns.get(r.id) || [];
        for (const g of unlinkedRuns) if (!linked.includes(g)) linked.push(g);
        unlinkedRuns = [];
        if (linked.length) whyButton(node, linked);
      }
      return node;
    }
    // Options as the pills the user saw; everything else (markdown and HTML too) as text.
    function chatContent(r) {
      if (r.message_type === "options") {
        const list = parseJson(r.content);
        if (Array.isArray(list))
          return el("span", { class: "options", "aria-label": "options offered" },
                    list.map(o => el("span", { class: "option" }, text(o))));
      }
      return text(r.content);
    }
    function whyButton(node, groups) {
      const steps = groups.reduce((n, g) => n + g.count, 0);
      const b = el("button", { type: "button", class: "why", "aria-label": "Show the reasoning steps that led to this reply" },
        "Why? " + plural(steps, "reasoning step"));
      b.addEventListener("click", () => {
        for (const g of groups) {
          g.details.open = true;
          g.details.classList.add("highlight");
          setTimeout(() => g.details.classList.remove("highlight"), 2000);
        }
        groups[0].details.scrollIntoView({ block: "center", behavior: "smooth" });
        groups[0].summary.focus();
      });
      node.querySelector(".meta").append(" ", b);
    }

    function renderIntent(r) {
      const params = (r.parameters || []).map(p => el("span", { class: "param", title: text(p.info) },
        text(p.name) + "=" + text(p.value)));
      const score = typeof r.score === "number" ? r.score.toFixed(2) : text(r.score);
      return li(r, "", el("div", { class: "line" },
        el("span", { class: "label" }, "Intent "),
        r.intent ? el("span", { class: "mono intent-name" }, text(r.intent)) : el("span", { class: "muted" }, "none matched"),
        " ", el("span", { class: "badge score", title: "score" }, score),
        params.length ? el("span", { class: "params", "aria-label": "parameters" }, params) : null,
        el("span", { class: "reason" }, " for “", text(r.message), "”", r.classifier ? " by " + r.classifier : "")), meta(r));
    }

    function renderTransition(r) {
      // The reason: the event that fired it and the trigger/conditions that held.
      const why = [];
      if (r.event) why.push(el("span", { class: "event mono" }, text(r.event)));
      if (r.condition) why.push(el("span", { class: "condition" }, text(r.condition)));
      return li(r, "", el("div", { class: "line" },
        el("span", { class: "label" }, "Transition "),
        el("span", { class: "mono" }, text(r.source)), " → ", el("span", { class: "mono" }, text(r.dest)),
        el("span", { class: "reason" }, " because ", why.length ? why.flatMap((w, i) => i ? [" · ", w] : [w]) : "automatic")), meta(r));
    }

    const isError = name => /error|exception|fail/i.test(name || "");
    const isWarning = name => /unhandled|refused|dropped|timeout|timed_out/i.test(name || "");
    function renderEvent(r) {
      const level = isError(r.event) ? "error" : isWarning(r.event) ? "warning" : "";
      return li(r, level, el("div", { class: "line" },
        el("span", { class: "label" }, level === "error" ? "Error " : "Event "),
        el("span", { class: "mono" }, text(r.event)), r.info ? el("div", { class: "content" }, text(r.info)) : null), meta(r));
    }

    function renderAgentMessage(r) {
      const out = r.direction === "out";
      const lineage = el("dl", { class: "lineage" });
      const pair = (k, v) => { if (v !== undefined && v !== null && v !== "") lineage.append(el("dt", null, k), el("dd", null, text(v))); };
      pair("message id", r.message_id); pair("caused by", r.causation_id); pair("conversation", r.correlation_id);
      pair("sender", [r.sender_agent, r.sender_session].filter(Boolean).join(" ")); pair("depth", r.depth);
      const other = r.other_session !== null && r.other_session !== undefined
        ? el("a", { href: "#/session/" + Number(r.other_session), class: "other-session" },
             (out ? "the receiving session" : "the sending session") + " (row " + Number(r.other_session) + ") →")
        : null;
      return li(r, r.direction, el("div", { class: "line" },
        el("span", { class: "label" }, out ? "Agent message sent " : "Agent message received "),
        el("span", { class: "badge" }, text(r.protocol)), " ", out ? "to " : "from ", el("span", { class: "mono" }, text(r.peer)), " ",
        el("span", { class: "badge " + (/refused|duplicate/.test(r.status) ? "warn" : "ok") }, text(r.status)), " ", other,
        el("div", { class: "content" }, text(r.content)),
        el("details", null, el("summary", { class: "muted" }, "Lineage"), lineage)), meta(r));
    }

    // ---- reasoning: run (run_id) > step (step_number) > entries ----
    function runGroup(r) {
      const key = r.run_id || ("row-" + r.id);
      let g = runs.get(key);
      if (g) return { g, node: null };
      const summary = el("summary");
      const body = el("div", { class: "run-body" });
      const details = el("details", { class: "run", "data-run": text(r.run_id) }, summary, body);
      g = { key, run_id: r.run_id, details, summary, body, steps: new Map(), count: 0, tokens: 0, latency: 0, llm: 0, tools: 0,
            outcome: "", errors: 0, chat_ids: new Set() };
      runs.set(key, g);
      const node = el("li", { class: "row reasoning", "data-id": r.id, "data-type": "reasoning" }, details);
      return { g, node };
    }
    function updateRunSummary(g) {
      const bits = [plural(g.count, "step")];
      if (g.llm) bits.push(plural(g.llm, "LLM call"));
      if (g.tools) bits.push(plural(g.tools, "tool call"));
      if (g.tokens) bits.push(g.tokens + " tokens");
      if (g.latency) bits.push(fmtMs(g.latency) + " in the model");
      setChildren(g.summary,
        el("span", { class: "label" }, "Reasoning run "), el("span", { class: "mono" }, g.run_id ? text(g.run_id).slice(0, 8) : "—"),
        " · " + bits.join(" · "),
        g.outcome ? el("span", null, " ", el("span", { class: "badge " + (g.outcome === "answered" ? "ok" : "warn") }, g.outcome)) : null,
        g.errors ? el("span", null, " ", el("span", { class: "badge err" }, plural(g.errors, "error"))) : null);
    }
    function renderReasoning(r) {
      const { g, node } = runGroup(r);
      g.count++;
      const p = parseJson(r.payload) || {};
      const details = p.details || {};
      const kind = r.step_kind || p.kind || r.kind;
      if (typeof r.prompt_tokens === "number") g.tokens += r.prompt_tokens;
      if (typeof r.completion_tokens === "number") g.tokens += r.completion_tokens;
      if (typeof r.latency_ms === "number") { g.latency += r.latency_ms; g.llm++; }
      if (kind === "llm_tool_calls") g.tools += (details.tool_calls || []).length;
      if (kind === "reasoning_finished" && details.outcome) g.outcome = details.outcome;
      const level = entryLevel(kind, details);
      if (level === "error") g.errors++;

      // The step node, by step number (rows with none go straight into the run).
      const stepNo = r.step_number ?? (typeof p.step === "number" ? p.step : null);
      let parent = g.body;
      if (stepNo !== null && stepNo !== undefined && !/^reasoning_(started|finished)$/.test(kind)) {
        let s = g.steps.get(stepNo);
        if (!s) {
          const sum = el("summary");
          const sb = el("div", { class: "step-body" });
          s = { details: el("details", { class: "step", open: true, "data-step": stepNo }, sum, sb), summary: sum, body: sb, kinds: [] };
          g.steps.set(stepNo, s);
          g.body.appendChild(s.details);
        }
        s.kinds.push(kind);
        s.summary.replaceChildren(el("span", { class: "label" }, "Step " + (Number(stepNo) + 1)), " · " + s.kinds.join(", "));
        parent = s.body;
      }
      parent.appendChild(renderEntry(r, kind, p, details, level));

      if (r.chat_id !== null && r.chat_id !== undefined) {
        g.chat_ids.add(r.chat_id);
        const list = replyRuns.get(r.chat_id) || [];
        if (!list.includes(g)) list.push(g);
        replyRuns.set(r.chat_id, list);
      } else if (!g.chat_ids.size && !unlinkedRuns.includes(g)) {
        unlinkedRuns.push(g);
      }
      updateRunSummary(g);
      return node;  // null when the run is already on the page
    }
    function entryLevel(kind, d) {
      if (/error/.test(kind) || d.is_error === true) return "error";
      if (/pushback|max_steps|token_budget|empty_answer|cancelled/.test(kind)) return "warning";
      return "";
    }
    function stats(r) {
      const s = [];
      if (typeof r.prompt_tokens === "number" || typeof r.completion_tokens === "number")
        s.push(el("span", { class: "badge tokens", title: "prompt + completion tokens" },
          text(r.prompt_tokens ?? "?") + " + " + text(r.completion_tokens ?? "?") + " tokens"));
      if (typeof r.latency_ms === "number") s.push(el("span", { class: "badge latency", title: "latency" }, fmtMs(r.latency_ms)));
      return s.length ? el("span", { class: "stats" }, s) : null;
    }
    function tasksList(tasks) {
      const mark = { pending: "☐", in_progress: "◐", completed: "✅", skipped: "⊘" };
      return el("ul", { class: "tasks" }, (tasks || []).map(t => el("li", null,
        (mark[t.status] || "•") + " #" + text(t.id) + " " + text(t.description) + (t.result ? " — " + text(t.result) : ""))));
    }
    function renderEntry(r, kind, p, d, level) {
      const head = el("div", { class: "entry-head" },
        el("span", { class: "kind" }, text(kind)), el("span", null, text(r.summary || p.summary)), stats(r));
      const body = [];
      switch (kind) {
        case "llm_tool_calls":
          for (const c of d.tool_calls || [])
            body.push(el("div", { class: "tool tool-call" }, "call ", el("span", { class: "tool-name" }, text(c.name)),
              c.id ? el("span", { class: "muted mono" }, " " + text(c.id)) : null,
              el("pre", { class: "arguments", "aria-label": "arguments" }, pretty(c.arguments ?? {}))));
          break;
        case "tool_result":
          body.push(el("div", { class: "tool tool-result" }, el("span", { class: "tool-name" }, text(d.name)),
            typeof d.latency_ms === "number" ? el("span", { class: "badge" }, " " + fmtMs(d.latency_ms)) : null,
            d.is_error ? el("span", { class: "badge err" }, "error") : null,
            el("div", { class: "muted" }, "arguments"), el("pre", { class: "arguments" }, pretty(d.arguments ?? {})),
            el("div", { class: "muted" }, "result"), el("pre", { class: "result" }, text(d.content))));
          break;
        case "task_added": case "task_completed": case "task_skipped":
          if (d.tasks) body.push(tasksList(d.tasks));
          else body.push(el("div", null, "#" + text(d.task_id) + " " + text(d.description) + (d.result || d.reason ? " — " + text(d.result || d.reason) : "")));
          break;
        case "pushback":
          body.push(el("div", null, "reason: " + text(d.reason)));
          if (d.pending) body.push(tasksList(d.pending));
          if (d.name) body.push(el("div", null, "tool ", el("span", { class: "tool-name" }, text(d.name)), el("pre", null, pretty(d.arguments ?? {}))));
          break;
        case "llm_text": case "final_answer":
          body.push(el("div", { class: "content" }, text(d.text)));
          break;
        case "reasoning_finished":
          if (d.final_task_list && d.final_task_list.length) body.push(tasksList(d.final_task_list));
          break;
        case "reasoning_started":
          if (d.user_message) body.push(el("div", { class: "content" }, "“" + text(d.user_message) + "”"));
          break;
        default:
          if (r.kind === "task_list_update") body.push(tasksList(p.tasks));
          else if (d && Object.keys(d).length) body.push(el("pre", null, pretty(d)));
      }
      body.push(el("details", { class: "raw" }, el("summary", { class: "muted" }, "payload"), el("pre", null, pretty(r.payload))));
      return el("div", { class: "entry " + level, "data-id": r.id, "data-kind": kind }, head, body);
    }

    fetchAll();
    return {
      stop() {
        stopped = true;
        clearTimeout(diagramTimer);
        if (socket) socket.stop();
      },
    };
  }

  route();
})();
