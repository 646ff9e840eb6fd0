// The operator console: sign-in, then views chosen by the URL's hash. Everything it shows comes from
// the service's API with the operator token; text from the API is set as text, never as HTML.
import { barChart, parsePrometheus, perMinuteChart, PALETTE } from "./charts.js";
import { decodeCalldata, inspectSignedTx } from "./txverify.js";

const TOKEN_KEY = "intents.console.token";
const POLL_MS = 2000;
const $ = (sel) => document.querySelector(sel);

// ---- DOM helper: h("tag", { attr }, ...children); strings become text nodes ----
function h(tag, attrs = {}, ...children) {
  const e = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs ?? {})) {
    if (v === undefined || v === null || v === false) continue;
    if (k.startsWith("on")) e.addEventListener(k.slice(2), v);
    else if (k === "class") e.className = v;
    else e.setAttribute(k, v === true ? "" : String(v));
  }
  for (const c of children.flat(Infinity)) if (c !== undefined && c !== null && c !== false) e.append(c instanceof Node ? c : String(c));
  return e;
}
const badge = (s) => h("span", { class: `badge s-${s}` }, s);
const short = (s, n = 10) => (s && s.length > n + 4 ? `${s.slice(0, n)}…${s.slice(-4)}` : (s ?? ""));
const when = (iso) => (iso ? new Date(iso).toLocaleString() : "");
const announce = (text) => ($("#live").textContent = text);

// ---- session: only the short-lived operator JWT is kept, in this tab's sessionStorage ----
const session = {
  get() {
    try {
      const s = JSON.parse(sessionStorage.getItem(TOKEN_KEY) ?? "null");
      return s && s.expires_at > Date.now() ? s.token : null;
    } catch {
      return null;
    }
  },
  set(token, expiresIn) {
    sessionStorage.setItem(TOKEN_KEY, JSON.stringify({ token, expires_at: Date.now() + (expiresIn - 5) * 1000 }));
  },
  clear() {
    sessionStorage.removeItem(TOKEN_KEY);
  },
};

class ApiError extends Error {
  constructor(status, body) {
    super(body?.detail ?? body?.title ?? `HTTP ${status}`);
    this.status = status;
    this.body = body;
  }
}

async function api(method, path, body) {
  const token = session.get();
  const res = await fetch(path, {
    method,
    headers: {
      ...(token ? { authorization: `Bearer ${token}` } : {}),
      ...(body !== undefined ? { "content-type": "application/json" } : {}),
    },
    body: body === undefined ? undefined : JSON.stringify(body),
    credentials: "omit",
    cache: "no-store",
  });
  const text = await res.text();
  let data;
  try {
    data = text ? JSON.parse(text) : undefined;
  } catch {
    data = text;
  }
  if (res.status === 401 && token) {
    signOut("Your session ended; sign in again.");
    throw new ApiError(401, data);
  }
  if (!res.ok) throw new ApiError(res.status, data);
  return data;
}

// ---- sign-in ----
async function signIn(ev) {
  ev.preventDefault();
  const input = $("#operator-key");
  const err = $("#signin-error");
  err.textContent = "";
  const key = input.value.trim();
  if (!key) {
    err.textContent = "Enter an operator key.";
    input.focus();
    return;
  }
  try {
    const r = await api("POST", "/v1/auth/api-key-token", { api_key: key });
    session.set(r.access_token, r.expires_in);
    input.value = "";
    showApp();
  } catch (e) {
    err.textContent = e.status === 401 || e.status === 403 ? `Operator key refused: ${e.message}` : `Sign-in failed: ${e.message}`;
    input.focus();
  }
}

function signOut(message) {
  const token = session.get();
  session.clear();
  if (token)
    void fetch("/v1/auth/token", { method: "DELETE", headers: { authorization: `Bearer ${token}` }, credentials: "omit" }).catch(() => {});
  stopTimers();
  $("#view").hidden = true;
  $("#view").replaceChildren();
  $("#nav").hidden = true;
  $("#signout").hidden = true;
  $("#signin").hidden = false;
  $("#signin-error").textContent = typeof message === "string" ? message : "";
  $("#operator-key").focus();
}

function showApp() {
  $("#signin").hidden = true;
  $("#view").hidden = false;
  $("#nav").hidden = false;
  $("#signout").hidden = false;
  if (!location.hash || location.hash === "#") location.hash = "#/transactions";
  else route();
}

// ---- routing ----
let timers = [];
function every(ms, fn) {
  timers.push(setInterval(fn, ms));
}
function stopTimers() {
  timers.forEach(clearInterval);
  timers = [];
}

const VIEWS = {
  transactions: transactionsView,
  tx: transactionView,
  agents: agentsView,
  approvals: approvalsView,
  audit: auditView,
  keys: keysView,
};

async function route() {
  if (!session.get()) return signOut();
  stopTimers();
  const [, name = "transactions", arg] = location.hash.split("?")[0].split("/");
  const view = VIEWS[name] ?? transactionsView;
  for (const a of document.querySelectorAll("#nav a")) {
    const target = a.getAttribute("href").slice(2);
    if (target === name || (name === "tx" && target === "transactions")) a.setAttribute("aria-current", "page");
    else a.removeAttribute("aria-current");
  }
  const root = $("#view");
  root.replaceChildren(h("p", { class: "hint" }, "Loading…"));
  try {
    await view(root, arg ? decodeURIComponent(arg) : undefined);
  } catch (e) {
    if (e.status !== 401) root.replaceChildren(h("p", { class: "error", role: "alert" }, `Could not load this view: ${e.message}`));
  }
  document.title = `${root.querySelector("h1")?.textContent ?? "Console"} — Intents signer`;
}

// ---- transactions ----
function txRow(t, isNew) {
  return h(
    "tr",
    { class: isNew ? "new" : undefined, "data-tx-id": t.id },
    h("td", {}, h("a", { href: `#/tx/${t.id}` }, short(t.id, 8))),
    h("td", { class: "wide" }, when(t.created_at)),
    h("td", { class: "mono wide" }, short(t.agent_id, 8)),
    h("td", {}, t.chain),
    h("td", { class: "mono" }, short(t.to)),
    h("td", {}, t.value),
    h("td", {}, badge(t.status), " ", t.chain_status ? badge(t.chain_status) : ""),
  );
}

async function transactionsView(root) {
  const agents = (await api("GET", "/v1/agents")).agents ?? [];
  const params = new URLSearchParams(location.hash.split("?")[1] ?? "");
  const filterIds = ["agent_id", "status", "chain_status", "chain"];
  const opt = (v, label = v) => h("option", { value: v }, label);
  const form = h(
    "form",
    { class: "filters card", "aria-label": "Filter transactions" },
    h(
      "div",
      {},
      h("label", { for: "f-agent_id" }, "Agent"),
      h(
        "select",
        { id: "f-agent_id", name: "agent_id" },
        opt("", "All agents"),
        agents.map((a) => opt(a.id, `${a.name} (${short(a.id, 8)})`)),
      ),
    ),
    h(
      "div",
      {},
      h("label", { for: "f-status" }, "Status"),
      h(
        "select",
        { id: "f-status", name: "status" },
        ["", "pending", "signed", "sign_only", "broadcast", "failed", "simulation_failed"].map((s) => opt(s, s || "Any")),
      ),
    ),
    h(
      "div",
      {},
      h("label", { for: "f-chain_status" }, "Chain status"),
      h(
        "select",
        { id: "f-chain_status", name: "chain_status" },
        ["", "unconfirmed", "confirmed", "reverted", "replaced", "dropped", "chain_reset"].map((s) => opt(s, s || "Any")),
      ),
    ),
    h(
      "div",
      {},
      h("label", { for: "f-chain" }, "Chain"),
      h("input", { id: "f-chain", name: "chain", maxlength: 64, value: params.get("chain") ?? "" }),
    ),
    h("div", {}, h("button", { type: "submit" }, "Apply filters")),
  );
  for (const id of filterIds) {
    const c = form.querySelector(`[name=${id}]`);
    if (c.tagName === "SELECT") c.value = params.get(id) ?? "";
  }
  form.addEventListener("submit", (ev) => {
    ev.preventDefault();
    const q = new URLSearchParams();
    for (const id of filterIds) {
      const v = form.querySelector(`[name=${id}]`).value.trim();
      if (v) q.set(id, v);
    }
    location.hash = `#/transactions${q.size ? "?" + q : ""}`;
  });
  const query = new URLSearchParams();
  for (const id of filterIds) if (params.get(id)) query.set(id, params.get(id));
  const tbody = h("tbody", { id: "tx-rows" });
  const table = h(
    "div",
    { class: "table-wrap" },
    h(
      "table",
      {},
      h("caption", { class: "sr-only" }, "Transactions, newest first"),
      h(
        "thead",
        {},
        h(
          "tr",
          {},
          ["Id", "Created", "Agent", "Chain", "To", "Value", "Status"].map((c) =>
            h("th", { scope: "col", class: c === "Created" || c === "Agent" ? "wide" : undefined }, c),
          ),
        ),
      ),
      tbody,
    ),
  );
  const more = h("button", { type: "button", class: "secondary", hidden: true }, "Load older");
  const status = h("p", { class: "hint", id: "tx-live" }, "Live: new transactions appear as they are made.");
  const charts = h("div", { class: "grid" });
  root.replaceChildren(h("h1", {}, "Transactions"), form, charts, h("div", { class: "card" }, status, table, more));

  const seen = new Map();
  let cursor = null;
  const render = (rows, { append, fresh }) => {
    for (const t of rows) {
      const old = seen.get(t.id);
      const row = txRow(t, fresh && !old);
      seen.set(t.id, row);
      if (old) old.replaceWith(row);
      else if (append) tbody.append(row);
      else tbody.prepend(row);
    }
  };
  const first = await api("GET", `/v1/transactions?limit=50&${query}`);
  render(first.transactions, { append: true, fresh: false });
  cursor = first.next_cursor;
  more.hidden = !cursor;
  if (first.transactions.length === 0) tbody.append(h("tr", { class: "empty" }, h("td", { colspan: 7 }, "No transactions yet.")));
  more.addEventListener("click", async () => {
    const page = await api("GET", `/v1/transactions?limit=50&${query}&cursor=${encodeURIComponent(cursor)}`);
    render(page.transactions, { append: true, fresh: false });
    cursor = page.next_cursor;
    more.hidden = !cursor;
  });
  // Live updates: the newest page is read again; rows not seen yet are added on top (in order), rows
  // seen are replaced (their status moves on).
  every(POLL_MS, async () => {
    try {
      const page = await api("GET", `/v1/transactions?limit=50&${query}`);
      const added = page.transactions.filter((t) => !seen.has(t.id));
      if (added.length) tbody.querySelector("tr.empty")?.remove();
      render([...page.transactions].reverse(), { append: false, fresh: true });
      if (added.length) {
        announce(`${added.length} new transaction${added.length > 1 ? "s" : ""}`);
        drawActivityCharts(charts).catch(() => {});
      }
      status.textContent = `Live: updated ${new Date().toLocaleTimeString()}.`;
    } catch (e) {
      status.textContent = `Live updates paused: ${e.message}`;
    }
  });
  await drawActivityCharts(charts);
  every(10_000, () => drawActivityCharts(charts).catch(() => {}));
}

/** Transactions and denials per minute (from the history and the audit log), stage latency (/metrics). */
async function drawActivityCharts(box) {
  const since = new Date(Date.now() - 30 * 60_000).toISOString();
  const [txs, denials, metrics] = await Promise.all([
    api("GET", `/v1/transactions?limit=500&from=${encodeURIComponent(since)}`),
    api("GET", `/v1/audit/events?action=transaction.denied&limit=1000&from=${encodeURIComponent(since)}`),
    metricsText(),
  ]);
  const byRule = new Map();
  for (const e of denials.events) {
    const rule = e.details?.reason_code ?? "unknown";
    if (!byRule.has(rule)) byRule.set(rule, []);
    byRule.get(rule).push(new Date(e.created_at));
  }
  const series = new Map([
    ["transactions", txs.transactions.map((t) => new Date(t.created_at))],
    ...[...byRule].map(([r, t]) => [`denied: ${r}`, t]),
  ]);
  const legend = h(
    "p",
    { class: "legend" },
    [...series.keys()].map((k, i) => h("span", {}, h("i", { style: undefined, class: `c${i}` }), k)),
  );
  [...legend.querySelectorAll("i")].forEach((i, k) => (i.style.background = PALETTE[k % PALETTE.length]));
  const stages = stageLatency(metrics);
  box.replaceChildren(
    h(
      "div",
      { class: "card chart" },
      h("h2", {}, "Transactions and denials per minute"),
      perMinuteChart("Transactions and denials per minute, last 30 minutes", series),
      legend,
    ),
    h(
      "div",
      { class: "card chart" },
      h("h2", {}, "Pipeline stage latency (mean)"),
      barChart("Mean latency of each submit stage, in milliseconds", stages, (v) => `${v.toFixed(1)} ms`),
    ),
  );
}

async function metricsText() {
  const token = session.get();
  const res = await fetch("/metrics", { headers: { authorization: `Bearer ${token}` }, credentials: "omit", cache: "no-store" });
  if (!res.ok) throw new ApiError(res.status, undefined);
  return parsePrometheus(await res.text());
}

function stageLatency(samples) {
  const sum = new Map();
  const count = new Map();
  for (const s of samples) {
    if (s.name === "intents_submit_stage_duration_seconds_sum") sum.set(s.labels.stage, s.value);
    if (s.name === "intents_submit_stage_duration_seconds_count") count.set(s.labels.stage, s.value);
  }
  return [...sum].filter(([st]) => count.get(st) > 0).map(([st, v]) => ({ label: st, value: (v / count.get(st)) * 1000 }));
}

// ---- one transaction ----
async function transactionView(root, id) {
  const [t, attempts, audit] = await Promise.all([
    api("GET", `/v1/transactions/${encodeURIComponent(id)}?include_signed_tx=true`),
    api("GET", `/v1/transactions/${encodeURIComponent(id)}/attempts`),
    api("GET", `/v1/audit/events?resource_id=${encodeURIComponent(id)}&limit=200`),
  ]);
  const fields = [
    "id",
    "agent_id",
    "chain",
    "chain_id",
    "from",
    "to",
    "value",
    "value_wei",
    "nonce",
    "gas_limit",
    "gas_price",
    "max_fee_per_gas",
    "max_priority_fee_per_gas",
    "status",
    "chain_status",
    "tx_hash",
    "block_number",
    "confirmations",
    "replaced_by",
    "error_message",
    "signing_key_path",
    "simulation_status",
    "created_at",
    "signed_at",
  ];
  const dl = h(
    "dl",
    { class: "fields" },
    fields
      .filter((f) => t[f] !== undefined && t[f] !== null)
      .map((f) => [
        h("dt", {}, f),
        h("dd", { class: typeof t[f] === "string" && t[f].startsWith("0x") ? "mono" : undefined }, String(t[f])),
      ]),
  );

  let verify;
  let calldata = h("p", { class: "hint" }, "No signed bytes to read.");
  if (t.signed_tx) {
    try {
      const v = inspectSignedTx(t.signed_tx);
      const hashOk = t.tx_hash ? v.hash.toLowerCase() === t.tx_hash.toLowerCase() : null;
      const signerOk = v.signer && t.from ? v.signer.toLowerCase() === t.from.toLowerCase() : false;
      verify = h(
        "div",
        { id: "verify" },
        h(
          "p",
          {},
          hashOk === null
            ? "Hash: no tx_hash recorded"
            : hashOk
              ? h("span", { class: "ok" }, `Hash verified: keccak256(signed_tx) = ${v.hash}`)
              : h("span", { class: "bad" }, `Hash mismatch: keccak256(signed_tx) = ${v.hash}`),
        ),
        h(
          "p",
          {},
          signerOk
            ? h("span", { class: "ok" }, `Signature verified: recovers to ${v.signer} (from)`)
            : h("span", { class: "bad" }, `Signature does not recover to from: ${v.signer ?? "no key"}`),
        ),
        h("p", { class: "hint" }, `Type ${v.type} transaction, checked in this browser.`),
      );
      const d = decodeCalldata(v.data);
      calldata =
        d.kind === "none"
          ? h("p", {}, "No calldata (a plain value transfer).")
          : d.kind === "call"
            ? h(
                "dl",
                { class: "fields" },
                h("dt", {}, "function"),
                h("dd", {}, `${d.name} (${d.selector})`),
                d.args.map((a) => [h("dt", {}, `${a.name} (${a.type})`), h("dd", { class: "mono" }, a.value)]),
              )
            : h(
                "dl",
                { class: "fields" },
                h("dt", {}, "selector"),
                h("dd", { class: "mono" }, d.selector),
                d.words.map((w, i) => [h("dt", {}, `word ${i}`), h("dd", { class: "mono" }, w)]),
              );
    } catch (e) {
      verify = h("p", { class: "bad" }, `Could not read the signed bytes: ${e.message}`);
    }
  } else verify = h("p", { class: "hint" }, "Not signed: nothing to verify.");

  const attemptRows = attempts.attempts.map((a, i) =>
    h(
      "tr",
      {},
      h("td", {}, String(i + 1)),
      h("td", {}, a.kind),
      h("td", { class: "mono" }, a.tx_hash),
      h("td", {}, badge(a.status)),
      h("td", {}, a.max_fee_per_gas ?? a.gas_price ?? ""),
      h("td", {}, String(a.send_count ?? "")),
    ),
  );
  const auditRows = audit.events.map((e) =>
    h(
      "tr",
      {},
      h("td", {}, when(e.created_at)),
      h("td", {}, e.action),
      h("td", {}, `${e.actor_type}${e.actor_id ? " " + short(e.actor_id, 8) : ""}`),
      h("td", { class: "mono wide" }, JSON.stringify(e.details ?? {})),
    ),
  );
  root.replaceChildren(
    h("p", {}, h("a", { href: "#/transactions" }, "← All transactions")),
    h("h1", {}, "Transaction ", h("span", { class: "mono" }, short(t.id, 8))),
    h(
      "div",
      { class: "grid" },
      h("section", { class: "card", "aria-labelledby": "h-fields" }, h("h2", { id: "h-fields" }, "Fields"), dl),
      h(
        "div",
        {},
        h("section", { class: "card", "aria-labelledby": "h-verify" }, h("h2", { id: "h-verify" }, "Verify"), verify),
        h("section", { class: "card", "aria-labelledby": "h-calldata" }, h("h2", { id: "h-calldata" }, "Calldata"), calldata),
      ),
    ),
    h(
      "section",
      { class: "card", "aria-labelledby": "h-attempts" },
      h("h2", { id: "h-attempts" }, "Attempts and fee bumps"),
      h(
        "div",
        { class: "table-wrap" },
        h(
          "table",
          { id: "attempts" },
          h(
            "thead",
            {},
            h(
              "tr",
              {},
              ["#", "Kind", "Hash", "Status", "Fee per gas (wei)", "Sends"].map((c) => h("th", { scope: "col" }, c)),
            ),
          ),
          h("tbody", {}, attemptRows),
        ),
      ),
    ),
    h(
      "section",
      { class: "card", "aria-labelledby": "h-audit" },
      h("h2", { id: "h-audit" }, "Audit trail"),
      h(
        "div",
        { class: "table-wrap" },
        h(
          "table",
          { id: "tx-audit" },
          h(
            "thead",
            {},
            h(
              "tr",
              {},
              ["When", "Action", "Actor", "Details"].map((c) => h("th", { scope: "col", class: c === "Details" ? "wide" : undefined }, c)),
            ),
          ),
          h("tbody", {}, auditRows),
        ),
      ),
    ),
  );
  // Confirmations move on while the page is open.
  every(POLL_MS * 2, async () => {
    const n = await api("GET", `/v1/transactions/${encodeURIComponent(id)}`).catch(() => null);
    if (!n) return;
    for (const [dt, dd] of pairs(dl))
      if (n[dt.textContent] !== undefined && n[dt.textContent] !== null) dd.textContent = String(n[dt.textContent]);
  });
}
function* pairs(dl) {
  const kids = [...dl.children];
  for (let i = 0; i + 1 < kids.length; i += 2) yield [kids[i], kids[i + 1]];
}

// ---- agents ----
const GUARDRAILS = [
  { name: "tx_max_value", label: "Max value per transaction (native units)", kind: "major" },
  { name: "tx_daily_limit", label: "Daily value limit (rolling 24 h)", kind: "major" },
  { name: "tx_max_per_day", label: "Max transactions per day", kind: "int" },
  { name: "tx_max_fee", label: "Max fee per transaction", kind: "major" },
  { name: "tx_daily_fee_budget", label: "Daily fee budget", kind: "major" },
  { name: "tx_max_gas_limit", label: "Max gas limit", kind: "int" },
  { name: "tx_to_allowlist", label: "Recipient allowlist (one address per line)", kind: "list" },
  { name: "tx_allowed_chains", label: "Allowed chains (one per line)", kind: "list" },
  { name: "tx_token_allowlist", label: "Token allowlist (one address per line)", kind: "list" },
];

function spendBar(label, spent, limit, id) {
  const s = Number(spent ?? 0);
  const l = limit === null || limit === undefined || limit === "" ? null : Number(limit);
  const pct = l ? Math.min(100, (s / l) * 100) : 0;
  const bar = h(
    "div",
    {
      class: `bar${l !== null && s >= l ? " over" : ""}`,
      role: "meter",
      "aria-valuemin": 0,
      "aria-valuemax": l ?? 0,
      "aria-valuenow": s,
      "aria-labelledby": id,
    },
    h("span", {}),
  );
  bar.firstChild.style.width = `${pct}%`;
  return h("div", {}, h("p", { id, class: "hint" }, `${label}: ${spent ?? 0}${l !== null ? ` of ${limit}` : " (no limit)"}`), bar);
}

function agentCard(a) {
  const pre = `ag-${a.id.slice(0, 8)}`;
  const inputs = GUARDRAILS.map((g) => {
    const id = `${pre}-${g.name}`;
    const v = a[g.name];
    const control =
      g.kind === "list"
        ? h("textarea", { id, name: g.name, rows: 2, "aria-describedby": `${id}-err` }, (v ?? []).join("\n"))
        : h("input", {
            id,
            name: g.name,
            inputmode: g.kind === "int" ? "numeric" : "decimal",
            value: v ?? "",
            "aria-describedby": `${id}-err`,
          });
    return h("div", {}, h("label", { for: id }, g.label), control, h("p", { class: "field-error", id: `${id}-err`, "data-field": g.name }));
  });
  const msg = h("p", { role: "status" });
  const form = h(
    "form",
    { class: "guardrails", "aria-label": `Guardrails of ${a.name}`, novalidate: true },
    inputs,
    h("button", { type: "submit" }, "Save guardrails"),
    msg,
  );
  form.addEventListener("submit", async (ev) => {
    ev.preventDefault();
    for (const e of form.querySelectorAll(".field-error")) e.textContent = "";
    msg.textContent = "";
    msg.className = "";
    const body = {};
    for (const g of GUARDRAILS) {
      const raw = form.querySelector(`[name=${g.name}]`).value.trim();
      if (g.kind === "list") body[g.name] = raw ? raw.split(/[\s,]+/).filter(Boolean) : [];
      else if (raw === "") body[g.name] = null;
      // Numbers go as the API types them; a value that is not a number is sent as typed so that the
      // API's own validation message is shown.
      else body[g.name] = g.kind === "int" && /^-?\d+$/.test(raw) ? Number(raw) : raw;
    }
    try {
      await api("PATCH", `/v1/agents/${a.id}`, body);
      msg.textContent = "Saved.";
      msg.className = "ok";
      announce(`Guardrails of ${a.name} saved`);
    } catch (e) {
      msg.textContent = `Not saved: ${e.message}`;
      msg.className = "error";
      const fieldErrors = e.body?.fields ?? {};
      let firstBad;
      for (const [f, m] of Object.entries(fieldErrors)) {
        const slot = form.querySelector(`.field-error[data-field="${f.split(".")[0]}"]`);
        if (slot) {
          slot.textContent = `${f}: ${m}`;
          firstBad ??= form.querySelector(`[name=${f.split(".")[0]}]`);
        }
      }
      firstBad?.setAttribute("aria-invalid", "true");
      firstBad?.focus();
    }
  });
  const keyOut = h("div", { role: "status" });
  const rotate = h("button", { type: "button", class: "secondary" }, "Rotate key");
  rotate.addEventListener("click", async () => {
    if (!confirm(`Replace the API key of ${a.name}? Its current key and tokens stop working now.`)) return;
    try {
      const r = await api("POST", `/v1/agents/${a.id}/rotate-key`);
      keyOut.replaceChildren(h("p", { class: "secret" }, "New key (shown once): ", h("code", { class: "mono" }, r.api_key)));
    } catch (e) {
      keyOut.replaceChildren(h("p", { class: "error" }, `Not rotated: ${e.message}`));
    }
  });
  const toggle = h("button", { type: "button", class: a.is_active ? "danger" : "" }, a.is_active ? "Disable agent" : "Enable agent");
  toggle.addEventListener("click", async () => {
    try {
      await api("PATCH", `/v1/agents/${a.id}`, { is_active: !a.is_active });
      route();
    } catch (e) {
      keyOut.replaceChildren(h("p", { class: "error" }, `Not changed: ${e.message}`));
    }
  });
  return h(
    "section",
    { class: "card agent", "aria-labelledby": `${pre}-name`, "data-agent-id": a.id },
    h("h2", { id: `${pre}-name` }, a.name, " ", badge(a.is_active ? "active" : "disabled")),
    h("p", { class: "mono hint" }, a.id),
    h("h3", {}, "Today"),
    spendBar("Value spent", a.tx_spent_today, a.tx_daily_limit, `${pre}-spent`),
    spendBar("Transactions", a.tx_count_today, a.tx_max_per_day, `${pre}-count`),
    spendBar("Fees spent", a.tx_fees_spent_today, a.tx_daily_fee_budget, `${pre}-fees`),
    h("h3", {}, "Guardrails"),
    form,
    h("div", {}, rotate, toggle),
    keyOut,
  );
}

async function agentsView(root) {
  const { agents } = await api("GET", "/v1/agents");
  root.replaceChildren(
    h("h1", {}, "Agents"),
    agents.length ? h("div", { class: "grid" }, agents.map(agentCard)) : h("p", {}, "No agents yet."),
  );
}

// ---- approvals (human approvals: /v1/pending-approvals) ----
// Two lists: what waits for a decision (status=pending), and the most recent decided ones with their
// outcome (the executed transaction or signature, or why not). Both are read again every 4 s; a card is
// rebuilt only when its approval moved on, so a reason being typed is kept.
const WAITING = new Set(["pending"]);

/** wei (decimal string) in major units, exactly (BigInt; no float rounding). */
function fromWei(wei, decimals = 18) {
  try {
    const v = BigInt(wei);
    const neg = v < 0n;
    const abs = neg ? -v : v;
    const base = 10n ** BigInt(decimals);
    const frac = (abs % base).toString().padStart(decimals, "0").replace(/0+$/, "");
    return `${neg ? "-" : ""}${abs / base}${frac ? "." + frac : ""}`;
  } catch {
    return String(wei);
  }
}

function untilText(iso) {
  const ms = new Date(iso).getTime() - Date.now();
  if (!(ms > 0)) return "past";
  const min = Math.round(ms / 60000);
  return min < 1 ? "in less than a minute" : min < 120 ? `in ${min} min` : `in ${Math.round(min / 60)} h`;
}

async function approvalsView(root) {
  let pending;
  try {
    pending = await api("GET", "/v1/pending-approvals?status=pending&limit=100");
  } catch (e) {
    if (e.status === 404) {
      root.replaceChildren(
        h("h1", {}, "Approvals"),
        h(
          "p",
          { class: "card", id: "approvals-unavailable", role: "status" },
          "Approvals are not available on this service (it has no /v1/pending-approvals).",
        ),
      );
      return;
    }
    throw e;
  }
  const [recent, agents] = await Promise.all([
    api("GET", "/v1/pending-approvals?limit=20"),
    api("GET", "/v1/agents").catch(() => ({ agents: [] })),
  ]);
  const names = new Map((agents.agents ?? []).map((a) => [a.id, a.name]));
  const waiting = h("div", { class: "grid", id: "approvals-waiting" });
  const decided = h("div", { class: "grid", id: "approvals-decided" });
  const waitingEmpty = h("p", { class: "card" }, "Nothing is waiting for a decision.");
  const decidedEmpty = h("p", { class: "hint" }, "No decided approvals yet.");
  root.replaceChildren(
    h("h1", {}, "Approvals"),
    h("section", { "aria-labelledby": "h-waiting" }, h("h2", { id: "h-waiting" }, "Waiting for a decision"), waitingEmpty, waiting),
    h("section", { "aria-labelledby": "h-decided" }, h("h2", { id: "h-decided" }, "Recently decided"), decidedEmpty, decided),
  );
  // id → { status, updated, created, key, el }. A card is rebuilt only when its approval moved on; an
  // answer older than what the card shows (a poll that was under way while a vote was cast) is ignored.
  const cards = new Map();
  const take = (p) => {
    const had = cards.get(p.id);
    if (had && String(p.updated_at) < had.updated) return;
    const key = `${p.status}|${p.current_approvals}|${p.signatures?.length ?? 0}`;
    if (had && had.key === key) return;
    const el = approvalCard(p, names, (next) => {
      take(next);
      render();
    });
    cards.set(p.id, { status: p.status, updated: String(p.updated_at), created: String(p.created_at), key, el });
  };
  const render = () => {
    const list = [...cards.values()].sort((a, b) => b.created.localeCompare(a.created));
    const w = list.filter((c) => WAITING.has(c.status)).map((c) => c.el);
    const d = list
      .filter((c) => !WAITING.has(c.status))
      .slice(0, 20)
      .map((c) => c.el);
    // Only touch the DOM when the order or a card changed (moving a node loses its focus).
    const same = (box, els) => box.children.length === els.length && els.every((e, i) => box.children[i] === e);
    if (!same(waiting, w)) waiting.replaceChildren(...w);
    if (!same(decided, d)) decided.replaceChildren(...d);
    waitingEmpty.hidden = w.length > 0;
    decidedEmpty.hidden = d.length > 0;
  };
  const show = (pend, rec) => {
    for (const p of [...rec, ...pend]) take(p);
    // A waiting card in neither list was decided elsewhere and has left the recent ones: dropped.
    const fresh = new Set([...pend, ...rec].map((p) => p.id));
    for (const [id, c] of cards) if (WAITING.has(c.status) && !fresh.has(id)) cards.delete(id);
    render();
  };
  show(pending.pending_approvals ?? [], recent.pending_approvals ?? []);
  every(POLL_MS * 2, async () => {
    const [p, r] = await Promise.all([
      api("GET", "/v1/pending-approvals?status=pending&limit=100"),
      api("GET", "/v1/pending-approvals?limit=20"),
    ]).catch(() => [null, null]);
    if (p && r) show(p.pending_approvals ?? [], r.pending_approvals ?? []);
  });
}

/** The decoded request: what, to whom, how much (from the approval's `summary` and `action_payload`). */
function approvalFacts(p) {
  const s = p.summary ?? {};
  const body = p.action_payload ?? {};
  const rows = [];
  const add = (k, v, mono = false) => v !== undefined && v !== null && v !== "" && rows.push([k, String(v), mono]);
  add("chain", s.chain ?? p.chain);
  add("from", s.from, true);
  if (p.action === "sign_intent") {
    add("intent type", s.intent_type ?? body.intent_type);
    add("kind", s.kind);
    if (s.meaning) add("meaning", typeof s.meaning === "string" ? s.meaning : JSON.stringify(s.meaning), true);
    add("valid until", s.valid_until ? when(s.valid_until) : undefined);
  } else {
    add("to", s.to ?? body.to, true);
    if (s.value_wei !== undefined) add("value", `${fromWei(s.value_wei)} (${s.value_wei} wei)`);
    else add("value", body.value);
    if (s.fee_wei !== undefined) add("worst-case fee", `${fromWei(s.fee_wei)} (${s.fee_wei} wei)`);
    for (const t of s.tokens ?? []) add("token amount", `${t.amount} of ${t.token}`, true);
    for (const a of s.authorizations ?? []) add("EIP-7702 delegate", a.delegate ?? JSON.stringify(a), true);
    const d = typeof body.data === "string" && body.data.length > 2 ? decodeCalldata(body.data) : null;
    if (d?.kind === "call") add("call", `${d.name}(${d.args.map((a) => `${a.name}=${a.value}`).join(", ")})`, true);
    else if (d?.kind === "raw") add("call", `selector ${d.selector} with ${d.words.length} words`, true);
  }
  return rows;
}

function approvalCard(p, names, onVoted) {
  const pre = `ap-${p.id.slice(0, 8)}`;
  const s = p.summary ?? {};
  const open = p.status === "pending";
  const what =
    p.action === "sign_intent"
      ? `Sign ${s.intent_type ?? "intent"}`
      : p.action === "transaction.sign"
        ? "Sign a transaction"
        : "Send a transaction";
  const agent = names.get(p.agent_id);
  const facts = [
    ...approvalFacts(p),
    ["agent", agent ? `${agent} (${p.agent_id})` : p.agent_id, true],
    ["approvals", `${p.current_approvals ?? 0} of ${p.required_approvals ?? 1}`, false],
    ["expires", open ? `${when(p.expires_at)} (${untilText(p.expires_at)})` : when(p.expires_at), false],
    ["payload hash", p.payload_hash, true],
  ];
  const changes = Array.isArray(s.balance_changes) ? s.balance_changes : null;
  const sim = changes
    ? h(
        "div",
        { class: "table-wrap" },
        h(
          "table",
          { class: "sim" },
          h("caption", {}, "Simulated balance changes"),
          h(
            "thead",
            {},
            h(
              "tr",
              {},
              ["Address", "Asset", "Change"].map((c) => h("th", { scope: "col" }, c)),
            ),
          ),
          h(
            "tbody",
            {},
            changes.length
              ? changes.map((c) =>
                  h(
                    "tr",
                    {},
                    h("td", { class: "mono" }, c.address),
                    h("td", {}, c.token_symbol || c.token),
                    h("td", { class: "mono" }, c.change),
                  ),
                )
              : h("tr", {}, h("td", { colspan: 3 }, "No balance changes.")),
          ),
        ),
      )
    : h("p", { class: "hint" }, "Not simulated (no balance changes to show).");
  const votes = (p.signatures ?? []).map((v) =>
    h(
      "li",
      {},
      `${v.decision === "approve" ? "Approved" : "Rejected"} by operator key ${short(v.approver_id, 8)} at ${when(v.created_at)}${v.reason ? `: “${v.reason}”` : ""}`,
    ),
  );
  let outcome = null;
  if (p.status === "executed" && p.result) {
    const r = p.result;
    outcome = h(
      "div",
      { class: "outcome" },
      h("p", { class: "ok" }, "Executed."),
      r.tx_hash
        ? h(
            "p",
            {},
            "Transaction ",
            h("a", { href: `#/tx/${r.id}`, class: "mono" }, short(r.id, 8)),
            " ",
            badge(r.status ?? "signed"),
            " hash ",
            h("span", { class: "mono" }, r.tx_hash),
          )
        : h("p", { class: "mono" }, r.signature ? `signature ${r.signature}` : JSON.stringify(r)),
    );
  } else if (p.status === "failed")
    outcome = h("p", { class: "bad" }, `Failed: ${p.failure_reason ?? "unknown reason"}. Nothing was signed.`);
  else if (p.status === "executing") outcome = h("p", { class: "hint" }, "Approved: executing now…");
  else if (p.status === "rejected") outcome = h("p", { class: "bad" }, "Rejected: nothing was signed.");
  else if (p.status === "expired" || p.status === "cancelled")
    outcome = h("p", { class: "hint" }, `${p.status === "expired" ? "Expired" : "Cancelled"}: nothing was signed.`);

  const out = h("p", { role: "status" });
  let form = null;
  if (open) {
    const reason = h("textarea", { id: `${pre}-reason`, name: "reason", rows: 2, maxlength: 1000 });
    const decide = (decision) => async () => {
      out.textContent = "";
      out.className = "";
      try {
        // The vote names the payload hash it was shown: a request changed meanwhile is refused (409).
        const next = await api("POST", `/v1/pending-approvals/${p.id}/approve`, {
          decision,
          payload_hash: p.payload_hash,
          reason: reason.value.trim() || undefined,
        });
        announce(
          decision === "approve" ? `Approval ${short(p.id, 8)}: approved, now ${next.status}` : `Approval ${short(p.id, 8)}: rejected`,
        );
        if (next.status === "pending") {
          out.textContent = `Vote recorded: ${next.current_approvals} of ${next.required_approvals} approvals.`;
          out.className = "ok";
        } else onVoted(next);
      } catch (e) {
        out.textContent = `Not recorded: ${e.message}`;
        out.className = "error";
      }
    };
    form = h(
      "div",
      { class: "decide" },
      h("label", { for: `${pre}-reason` }, "Reason (recorded with the decision)"),
      reason,
      h(
        "div",
        {},
        h("button", { type: "button", onclick: decide("approve") }, "Approve"),
        h("button", { type: "button", class: "danger", onclick: decide("reject") }, "Reject"),
      ),
    );
  }
  return h(
    "section",
    { class: "card approval", "aria-labelledby": `${pre}-h`, "data-approval-id": p.id, "data-status": p.status },
    h("h3", { id: `${pre}-h` }, what, " ", badge(p.status ?? "pending")),
    (p.reasons ?? []).length
      ? h(
          "ul",
          { class: "reasons" },
          p.reasons.map((r) => h("li", {}, h("strong", {}, r.rule), r.detail ? `: ${r.detail}` : "")),
        )
      : null,
    h(
      "dl",
      { class: "fields" },
      facts
        .filter(([, v]) => v !== undefined && v !== null && v !== "")
        .map(([k, v, mono]) => [h("dt", {}, k), h("dd", { class: mono ? "mono" : undefined }, v)]),
    ),
    sim,
    votes.length ? h("ul", { class: "votes" }, votes) : null,
    outcome,
    form,
    out,
  );
}

// ---- audit ----
async function auditView(root) {
  const params = new URLSearchParams(location.hash.split("?")[1] ?? "");
  const names = ["action", "actor_id", "resource_id"];
  const labels = { action: "Action (e.g. transaction.denied)", actor_id: "Actor id", resource_id: "Resource id" };
  const form = h(
    "form",
    { class: "filters card", "aria-label": "Filter audit events" },
    names.map((n) =>
      h(
        "div",
        {},
        h("label", { for: `a-${n}` }, labels[n]),
        h("input", { id: `a-${n}`, name: n, maxlength: 100, value: params.get(n) ?? "" }),
      ),
    ),
    h("div", {}, h("button", { type: "submit" }, "Apply filters")),
  );
  form.addEventListener("submit", (ev) => {
    ev.preventDefault();
    const q = new URLSearchParams();
    for (const n of names) if (form.querySelector(`[name=${n}]`).value.trim()) q.set(n, form.querySelector(`[name=${n}]`).value.trim());
    location.hash = `#/audit${q.size ? "?" + q : ""}`;
  });
  const query = new URLSearchParams();
  for (const n of names) if (params.get(n)) query.set(n, params.get(n));
  const [verify, page] = await Promise.all([api("GET", "/v1/audit/verify"), api("GET", `/v1/audit/events?limit=100&${query}`)]);
  const tbody = h("tbody", {});
  const add = (events) =>
    tbody.append(
      ...events.map((e) =>
        h(
          "tr",
          {},
          h("td", { class: "wide" }, String(e.chain_seq ?? "")),
          h("td", {}, when(e.created_at)),
          h("td", {}, e.action),
          h("td", {}, `${e.actor_type}${e.actor_id ? " " + short(e.actor_id, 8) : ""}`),
          h(
            "td",
            { class: "mono" },
            e.resource_id
              ? h(
                  "a",
                  { href: e.resource_type === "transaction" ? `#/tx/${e.resource_id}` : `#/audit?resource_id=${e.resource_id}` },
                  short(e.resource_id, 8),
                )
              : "",
          ),
          h("td", { class: "mono wide" }, JSON.stringify(e.details ?? {})),
        ),
      ),
    );
  add(page.events);
  let cursor = page.next_cursor;
  const more = h("button", { type: "button", class: "secondary", hidden: !cursor }, "Load older");
  more.addEventListener("click", async () => {
    const p = await api("GET", `/v1/audit/events?limit=100&${query}&cursor=${encodeURIComponent(cursor)}`);
    add(p.events);
    cursor = p.next_cursor;
    more.hidden = !cursor;
  });
  root.replaceChildren(
    h("h1", {}, "Audit"),
    h(
      "section",
      { class: "card", id: "audit-verify", "aria-labelledby": "h-chain" },
      h("h2", { id: "h-chain" }, "Hash chain"),
      verify.chain_valid
        ? h("p", { class: "ok" }, `Chain valid: ${verify.events_verified} events verified`)
        : h(
            "p",
            { class: "bad" },
            `Chain broken at event ${verify.broken_at_event_id} (${verify.events_verified} of ${verify.events_checked} verified)`,
          ),
      h(
        "p",
        { class: "hint" },
        `${verify.events_unsealed} events not sealed yet (sealed within seconds). ${verify.scheme?.chain_structure ?? ""}`,
      ),
    ),
    form,
    h(
      "div",
      { class: "card table-wrap" },
      h(
        "table",
        { id: "audit-events" },
        h(
          "thead",
          {},
          h(
            "tr",
            {},
            ["Seq", "When", "Action", "Actor", "Resource", "Details"].map((c) =>
              h("th", { scope: "col", class: c === "Seq" || c === "Details" ? "wide" : undefined }, c),
            ),
          ),
        ),
        tbody,
      ),
      more,
    ),
  );
}

// ---- keys and chains ----
async function keysView(root) {
  const [keys, chains, metrics] = await Promise.all([
    api("GET", "/v1/signing-keys"),
    api("GET", "/v1/admin/chains"),
    metricsText().catch(() => []),
  ]);
  const keyList = keys.signing_keys ?? keys.keys ?? [];
  const keyRows = keyList.map((k) =>
    h(
      "tr",
      {},
      h("td", { class: "mono" }, k.path),
      h("td", { class: "mono" }, k.address),
      h("td", {}, k.chain ?? "any"),
      h("td", {}, k.agent_id ? short(k.agent_id, 8) : "shared"),
      h("td", { class: "balance", "data-address": k.address }, "…"),
    ),
  );
  const chainList = chains.chains ?? [];
  const chainRows = chainList.map((c) =>
    h(
      "tr",
      { "data-chain": c.name },
      h("td", {}, c.name),
      h("td", {}, String(c.chain_id)),
      h("td", {}, c.is_enabled === false ? "disabled" : "enabled"),
      h("td", { class: "mono wide" }, c.rpc_url ?? ""),
      h("td", { class: "rpc" }, "…"),
    ),
  );
  const broadcasts = metrics
    .filter((m) => m.name === "intents_broadcast_results_total")
    .map((m) => ({ label: `${m.labels.chain}: ${m.labels.outcome}`, value: m.value }));
  root.replaceChildren(
    h("h1", {}, "Keys and chains"),
    h(
      "section",
      { class: "card", "aria-labelledby": "h-keys" },
      h("h2", { id: "h-keys" }, "Signing keys"),
      h(
        "div",
        { class: "table-wrap" },
        h(
          "table",
          { id: "keys" },
          h(
            "thead",
            {},
            h(
              "tr",
              {},
              ["Path", "Address", "Chain", "Agent", "Balance"].map((c) => h("th", { scope: "col" }, c)),
            ),
          ),
          h("tbody", {}, keyRows),
        ),
      ),
    ),
    h(
      "section",
      { class: "card", "aria-labelledby": "h-chains" },
      h("h2", { id: "h-chains" }, "Chains"),
      h(
        "div",
        { class: "table-wrap" },
        h(
          "table",
          { id: "chains" },
          h(
            "thead",
            {},
            h(
              "tr",
              {},
              ["Name", "Chain id", "State", "RPC", "RPC health"].map((c) =>
                h("th", { scope: "col", class: c === "RPC" ? "wide" : undefined }, c),
              ),
            ),
          ),
          h("tbody", {}, chainRows),
        ),
      ),
    ),
    h(
      "section",
      { class: "card chart", "aria-labelledby": "h-bc" },
      h("h2", { id: "h-bc" }, "Broadcast outcomes"),
      barChart("Broadcast outcomes by chain", broadcasts, (v) => String(v)),
    ),
  );
  // RPC health and balances: the service asks each chain's nodes (bounded, with a timeout each).
  const [health, balances] = await Promise.all([api("GET", "/v1/admin/chains/health"), api("GET", "/v1/admin/signing-keys/balances")]);
  for (const c of health.chains) {
    const cell = root.querySelector(`tr[data-chain="${CSS.escape(c.name)}"] .rpc`);
    if (!cell) continue;
    cell.replaceChildren(
      c.ok ? h("span", { class: "ok" }, `answering (block ${c.block_number})`) : h("span", { class: "bad" }, `not answering: ${c.error}`),
      h("span", { class: "hint" }, ` ${c.healthy_endpoints} of ${c.endpoints} endpoints healthy`),
    );
  }
  for (const b of balances.balances) {
    for (const td of root.querySelectorAll("td.balance")) {
      if (td.dataset.address?.toLowerCase() !== b.address.toLowerCase() || td.closest("tr").children[2].textContent !== b.chain) continue;
      td.textContent = b.error ? `unknown (${b.error})` : `${b.balance_display}`;
    }
  }
  for (const td of root.querySelectorAll("td.balance")) if (td.textContent === "…") td.textContent = "—";
  for (const td of root.querySelectorAll("td.rpc")) if (td.textContent === "…") td.textContent = "disabled";
}

// ---- start ----
$("#signin-form").addEventListener("submit", signIn);
$("#signout").addEventListener("click", () => signOut("Signed out."));
window.addEventListener("hashchange", route);
if (session.get()) showApp();
else $("#operator-key").focus();
