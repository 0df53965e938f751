// The compliance console: search the signed audit trail, read entries with their FIX messages
// decoded, follow an order's, RFQ's or trade's life, check receipts, export CSV and bundles.
// Everything comes from the gateway's /compliance API with the user's bearer token; every call
// is itself audited by the gateway.

import { ApiError, ComplianceApi } from "/ui/api.js";
import { h } from "/ui/util.js";

const TOKEN_KEY = "fixbridge.compliance.token";
const $ = (id) => document.getElementById(id);

let api = null;
let filters = {};
let rows = []; // the results shown, in order
let selected = -1;
let next = null; // cursor of the next page, or null
let exportJob = null;
let lastReceipt = null;

// --- signing in ------------------------------------------------------------------------------

async function signIn(token) {
  const candidate = new ComplianceApi(token);
  setStatus("connecting", "signing in…");
  $("sign-in-error").textContent = "";
  let me;
  try {
    me = await candidate.me();
  } catch (err) {
    signOut();
    $("sign-in-error").textContent =
      err.status === 401 ? "Token refused by the gateway."
        : err.status === 403 ? "This token has no compliance role." : err.message;
    return;
  }
  api = candidate;
  sessionStorage.setItem(TOKEN_KEY, token);
  $("token").value = "";
  $("who").textContent = `${me.name} (${me.role})`;
  $("who").hidden = false;
  $("sign-out").hidden = false;
  $("sign-in").hidden = true;
  $("console").hidden = false;
  setStatus("live", "signed in");
  $("search-form").elements.client.focus();
}

function signOut() {
  api = null;
  sessionStorage.removeItem(TOKEN_KEY);
  filters = {};
  rows = [];
  selected = -1;
  next = null;
  exportJob = null;
  lastReceipt = null;
  $("rows").replaceChildren();
  $("result-count").textContent = "";
  $("results-empty").hidden = false;
  for (const id of ["detail", "timeline", "receipt", "export"]) $(id).hidden = true;
  $("search-form").reset();
  $("who").hidden = true;
  $("sign-out").hidden = true;
  $("console").hidden = true;
  $("sign-in").hidden = false;
  setStatus("signed-out", "signed out");
}

function setStatus(state, text) {
  const pill = $("status");
  pill.dataset.state = state;
  pill.textContent = text;
}

function failed(err, where = "search-error") {
  if (err instanceof ApiError && err.status === 401) {
    signOut();
    $("sign-in-error").textContent = "The gateway no longer accepts this token.";
    return;
  }
  $(where).textContent = err.message;
}

// --- search ----------------------------------------------------------------------------------

const UTC = /^\d{4}-\d{2}-\d{2}(T\d{2}:\d{2}(:\d{2}(\.\d{1,6})?)?)?(Z|[+-]\d{2}:\d{2})?$/;

/** A typed time as the API wants it: a date alone is midnight UTC, no offset means UTC. */
function utcInput(value, what) {
  const text = value.trim();
  if (!text) return "";
  if (!UTC.test(text)) throw new Error(`${what}: "${text}" is not a UTC time like 2026-12-07T09:30:00Z`);
  let out = text.length === 10 ? `${text}T00:00:00` : text;
  if (!/(Z|[+-]\d{2}:\d{2})$/.test(out)) out += "Z";
  return out;
}

function readFilters() {
  const form = $("search-form").elements;
  const out = {};
  for (const name of ["client", "cl_ord_id", "order_id", "rfq_id", "quote_id", "trade_id",
    "desk", "kind"]) {
    const value = form[name].value.trim();
    if (value) out[name] = value;
  }
  const frm = utcInput(form.from.value, "From");
  const to = utcInput(form.to.value, "To");
  if (frm) out.from = frm;
  if (to) out.to = to;
  return out;
}

async function search() {
  if (!api) return;
  $("search-error").textContent = "";
  try {
    filters = readFilters();
  } catch (err) {
    $("search-error").textContent = err.message;
    return;
  }
  rows = [];
  selected = -1;
  next = null;
  $("rows").replaceChildren();
  await loadPage();
  if (rows.length) select(0);
  $("results").focus();
}

async function loadPage() {
  try {
    const page = await api.search(filters, next);
    rows.push(...page.items);
    next = page.next;
    for (const item of page.items) $("rows").append(resultRow(item, rows.indexOf(item)));
  } catch (err) {
    failed(err);
  }
  $("result-count").textContent = rows.length ? `(${rows.length}${next !== null ? "+" : ""})` : "";
  $("results-empty").hidden = rows.length > 0;
  $("results-empty").textContent = rows.length ? "" : "No entries match.";
  $("btn-more").hidden = next === null;
}

function resultRow(item, index) {
  const tr = h("tr", {
    dataset: { seq: item.seq, kind: item.kind },
    onclick: () => select(index),
    ondblclick: () => openEntry(item.seq),
  },
  h("td", { class: "num" }, String(item.seq)),
  h("td", { class: "mono" }, item.ts.slice(0, 10) + " " + item.ts.slice(11, 26)),
  h("td", {}, h("span", { class: `kind kind-${item.kind.split(".")[0]}` }, item.kind)),
  h("td", { class: "mono" }, item.actor),
  h("td", { class: "what", title: item.summary }, item.summary),
  );
  return tr;
}

function select(index) {
  if (index < 0 || index >= rows.length) return;
  selected = index;
  const trs = $("rows").children;
  for (let i = 0; i < trs.length; i++) trs[i].classList.toggle("selected", i === index);
  trs[index].scrollIntoView({ block: "nearest" });
}

function current() {
  return selected >= 0 ? rows[selected] : null;
}

/** What a row's timeline or receipt is about: its trade, else its RFQ, order, ClOrdID. */
function subjectOf(item) {
  const refs = item.refs || {};
  for (const [subject, ref] of [["trade", "trade_id"], ["rfq", "rfq_id"], ["order", "order_id"],
    ["cl_ord_id", "cl_ord_id"], ["quote", "quote_id"], ["clearing", "clearing_key"]]) {
    // an RFQ fill's ExecID is its trade; an order's ExecIDs (OE...) are not worth following
    const values = (refs[ref] || []).filter((v) => !(ref === "trade_id" && /^OE\d+$/.test(v)));
    if (values.length) return { subject, value: values[0] };
  }
  return null;
}

// --- entry, timeline, receipt ----------------------------------------------------------------

function hidePanels() {
  for (const id of ["detail", "timeline", "receipt"]) $(id).hidden = true;
}

async function openEntry(seq) {
  let entry;
  try {
    entry = await api.entry(seq);
  } catch (err) {
    failed(err);
    return;
  }
  hidePanels();
  $("detail-title").textContent = `Entry ${entry.seq}`;
  const body = [
    h("dl", { class: "facts" },
      h("dt", {}, "time"), h("dd", { class: "mono" }, entry.ts),
      h("dt", {}, "kind"), h("dd", {}, entry.kind),
      h("dt", {}, "actor"), h("dd", { class: "mono" }, entry.actor),
      h("dt", {}, "entry hash"), h("dd", { class: "mono hash" }, entry.entry_hash),
    ),
  ];
  if (entry.fix) {
    const fix = entry.fix;
    body.push(h("h3", {}, `${fix.message_name || "FIX message"} (${fix.msg_type})`,
      h("span", { class: `badge ${fix.exact ? "ok" : "warn"}` },
        fix.exact ? "exact wire bytes" : "old record: | stood for SOH")));
    body.push(h("table", { class: "grid fix", id: "fix-fields" },
      h("thead", {}, h("tr", {},
        h("th", { class: "num" }, "Tag"), h("th", {}, "Field"), h("th", {}, "Value"),
        h("th", {}, "Meaning"))),
      h("tbody", {}, fix.fields.map((f) => h("tr", {},
        h("td", { class: "num" }, f.tag),
        h("td", {}, f.name || "?"),
        h("td", { class: "mono value" }, f.value),
        h("td", { class: "muted" }, f.enum_name || "")))),
    ));
  }
  if (entry.parts) {  // a command: the message in (above), then what it caused, in order
    body.push(h("h3", {}, `This command and what it caused (${entry.parts.length} parts)`));
    body.push(h("table", { class: "grid", id: "command-parts" },
      h("thead", {}, h("tr", {},
        h("th", { class: "num" }, "#"), h("th", {}, "Kind"), h("th", {}, "Actor"),
        h("th", {}, "Summary"))),
      h("tbody", {}, entry.parts.map((part, i) => h("tr", {},
        h("td", { class: "num" }, String(i + 1)),
        h("td", {}, part.kind),
        h("td", { class: "mono" }, part.actor),
        h("td", { class: "mono value" }, part.summary)))),
    ));
  }
  if (entry.body) {
    body.push(h("h3", {}, `Body as ${entry.kind === "clearing.out" ? "sent" : "received"} ` +
      `(${entry.body.bytes} bytes${entry.body.content_type ? `, ${entry.body.content_type}` : ""})`));
    body.push(h("pre", { class: "body" }, entry.body.text ?? "(not UTF-8: base64)\n" + entry.body.b64));
  }
  body.push(h("h3", {}, "Canonical line (what the hash covers)"));
  body.push(h("pre", { class: "line" }, entry.line));
  $("detail-body").replaceChildren(...body);
  $("detail").hidden = false;
}

async function openTimeline(item = current()) {
  const subject = item && subjectOf(item);
  if (!subject) {
    $("search-error").textContent = "This entry names no order, RFQ or trade.";
    return;
  }
  let found;
  try {
    found = await api.timeline(subject.subject, subject.value);
  } catch (err) {
    failed(err);
    return;
  }
  hidePanels();
  $("timeline-title").textContent = `Timeline · ${subject.subject} ${subject.value}`;
  $("timeline-items").replaceChildren(...found.items.map((it) => h("li", {
    class: `kind-${it.kind.split(".")[0]}`, dataset: { seq: it.seq }, tabindex: 0,
    onclick: () => openEntry(it.seq),
    onkeydown: (ev) => { if (ev.key === "Enter") openEntry(it.seq); },
  },
  h("span", { class: "mono when" }, it.ts.slice(11, 26)),
  h("span", { class: "kind", title: it.kind }, it.kind),
  h("span", { class: "what", title: it.summary }, it.summary))));
  $("timeline").hidden = false;
}

async function sha256(bytes) {
  return new Uint8Array(await crypto.subtle.digest("SHA-256", bytes));
}

function fromHex(hex) {
  const out = new Uint8Array(hex.length / 2);
  for (let i = 0; i < out.length; i++) out[i] = parseInt(hex.slice(2 * i, 2 * i + 2), 16);
  return out;
}

function toHex(bytes) {
  return Array.from(bytes, (b) => b.toString(16).padStart(2, "0")).join("");
}

function concat(...parts) {
  const out = new Uint8Array(parts.reduce((n, p) => n + p.length, 0));
  let at = 0;
  for (const p of parts) {
    out.set(p, at);
    at += p.length;
  }
  return out;
}

/** RFC 9162 §2.1.3.2: the root an inclusion proof leads to, computed in this browser. */
async function rootFromProof(index, size, leaf, proof) {
  let fn = index;
  let sn = size - 1;
  let r = leaf;
  for (const p of proof) {
    if (sn === 0) return null;
    if (fn % 2 === 1 || fn === sn) {
      r = await sha256(concat(new Uint8Array([1]), p, r));
      if (fn % 2 === 0) {
        while (fn % 2 === 0 && fn !== 0) {
          fn = Math.floor(fn / 2);
          sn = Math.floor(sn / 2);
        }
      }
    } else {
      r = await sha256(concat(new Uint8Array([1]), r, p));
    }
    fn = Math.floor(fn / 2);
    sn = Math.floor(sn / 2);
  }
  return sn === 0 ? r : null;
}

/** How many of the receipt's entries this browser itself proves included under the signed
 *  root (null where WebCrypto is unavailable: plain http to a host that is not localhost). */
async function checkProofs(receipt) {
  if (!globalThis.crypto?.subtle) return null;
  const root = receipt.checkpoint.root;
  let ok = 0;
  for (const item of receipt.entries) {
    const leaf = await sha256(concat(new Uint8Array([0]), new TextEncoder().encode(item.entry)));
    const got = await rootFromProof(item.seq, receipt.checkpoint.size, leaf,
      item.proof.map(fromHex));
    if (got && toHex(got) === root) ok += 1;
  }
  return ok;
}

async function openReceipt(item = current()) {
  const subject = item && subjectOf(item);
  if (!subject) {
    $("search-error").textContent = "This entry names no order, RFQ or trade.";
    return;
  }
  let found;
  try {
    found = await api.receipt(subject.subject, subject.value);
  } catch (err) {
    failed(err);
    return;
  }
  lastReceipt = { subject, doc: found.receipt };
  hidePanels();
  const cp = found.receipt.checkpoint;
  const n = found.receipt.entries.length;
  const status = h("dd", { id: "receipt-browser" }, "checking…");
  $("receipt-title").textContent = `Receipt · ${subject.subject} ${subject.value}`;
  $("receipt-body").replaceChildren(
    h("p", { id: "receipt-status", class: `verdict ${found.report.ok ? "ok" : "err"}` },
      found.report.ok ? `Verified: ${n} entries included in the signed tree`
        : `NOT verified: ${found.report.problem}`),
    h("dl", { class: "facts" },
      h("dt", {}, "gateway check"), h("dd", {}, found.report.text),
      h("dt", {}, "this browser"), status,
      h("dt", {}, "tree size"), h("dd", { class: "mono" }, String(cp.size)),
      h("dt", {}, "root"), h("dd", { class: "mono hash" }, cp.root),
      h("dt", {}, "signed at"), h("dd", { class: "mono" }, cp.ts),
      h("dt", {}, "key id"), h("dd", { class: "mono" }, cp.key_id),
    ),
    h("p", { class: "muted small" }, "Save the JSON and check it offline with the " +
      "fixbridge.audit.receipt.v1 verifier (otc.audit.verify_receipt), pinning the key id."),
    h("ol", { class: "timeline" }, found.receipt.entries.map((e) => {
      const parsed = JSON.parse(e.entry);
      return h("li", { dataset: { seq: e.seq } },
        h("span", { class: "mono when" }, parsed.ts.slice(11, 26)),
        h("span", { class: "kind" }, parsed.kind),
        h("span", { class: "muted small" }, `${e.proof.length} proof hashes`));
    })),
  );
  $("receipt").hidden = false;
  const ok = await checkProofs(found.receipt);
  status.textContent = ok === null ? "no WebCrypto here (needs https or localhost)"
    : `${ok} of ${n} inclusion proofs lead to the signed root`;
  status.className = ok === n ? "ok" : "err";
}

function saveBlob(blob, name) {
  const url = URL.createObjectURL(blob);
  const a = h("a", { href: url, download: name, hidden: true });
  document.body.append(a);
  a.click();
  a.remove();
  setTimeout(() => URL.revokeObjectURL(url), 60_000);
}

// --- exports ---------------------------------------------------------------------------------

async function exportCsv() {
  if (!api || exportJob) return;
  $("search-error").textContent = "";
  let wanted;
  try {
    wanted = readFilters();
  } catch (err) {
    $("search-error").textContent = err.message;
    return;
  }
  let job;
  try {
    job = await api.startCsv(wanted);
  } catch (err) {
    failed(err);
    return;
  }
  exportJob = job.job_id;
  $("export").hidden = false;
  $("export-label").textContent = "CSV export";
  showProgress(job);
  while (job.state === "running") {
    await new Promise((resolve) => setTimeout(resolve, 250));
    try {
      job = await api.csvProgress(exportJob);
    } catch (err) {
      failed(err);
      exportJob = null;
      return;
    }
    showProgress(job);
  }
  if (job.state === "done") {
    try {
      saveBlob(await api.csv(job.job_id), `audit-${job.job_id}.csv`);
      $("export-label").textContent = "CSV export downloaded";
    } catch (err) {
      failed(err);
    }
  } else {
    $("search-error").textContent = `CSV export failed: ${job.error}`;
  }
  $("export").dataset.state = job.state;
  exportJob = null;
}

function showProgress(job) {
  const bar = $("export-progress");
  bar.max = Math.max(job.total, 1);
  bar.value = job.state === "done" ? bar.max : job.done;
  $("export-count").textContent = `${job.done} / ${job.total} rows · ${job.state}`;
  $("export").dataset.state = job.state;
}

async function exportBundle() {
  if (!api) return;
  let wanted;
  try {
    wanted = readFilters();
  } catch (err) {
    $("search-error").textContent = err.message;
    return;
  }
  $("export").hidden = false;
  $("export-label").textContent = "Signed bundle: building…";
  $("export-progress").removeAttribute("value");
  $("export-count").textContent = "";
  try {
    saveBlob(await api.bundle(wanted.from, wanted.to), "audit-bundle.tar");
    $("export-label").textContent = "Signed bundle downloaded (check it with fixbridge audit verify)";
    $("export-progress").value = $("export-progress").max;
  } catch (err) {
    failed(err);
    $("export").hidden = true;
  }
}

// --- keys ------------------------------------------------------------------------------------

function onKey(ev) {
  if (!api || ev.ctrlKey || ev.metaKey || ev.altKey) return;
  const typing = ev.target.closest("input, select, textarea");
  if (ev.key === "Escape") {
    if (typing) ev.target.blur();
    else hidePanels();
    return;
  }
  if (typing) return;
  const actions = {
    "/": () => $("search-form").elements.client.focus(),
    j: () => select(Math.min(selected + 1, rows.length - 1)),
    ArrowDown: () => select(Math.min(selected + 1, rows.length - 1)),
    k: () => select(Math.max(selected - 1, 0)),
    ArrowUp: () => select(Math.max(selected - 1, 0)),
    o: () => current() && openEntry(current().seq),
    Enter: () => current() && openEntry(current().seq),
    t: () => openTimeline(),
    r: () => openReceipt(),
    n: () => next !== null && loadPage(),
    e: () => exportCsv(),
    b: () => exportBundle(),
  };
  const action = actions[ev.key];
  if (action && !(ev.key === "Enter" && ev.target.closest("button, li"))) {
    ev.preventDefault();
    action();
  }
}

// --- start -----------------------------------------------------------------------------------

function start() {
  $("sign-in-form").addEventListener("submit", (ev) => {
    ev.preventDefault();
    const token = $("token").value.trim();
    if (token) signIn(token);
  });
  $("sign-out").addEventListener("click", signOut);
  $("search-form").addEventListener("submit", (ev) => {
    ev.preventDefault();
    search();
  });
  $("btn-clear").addEventListener("click", () => $("search-form").reset());
  $("btn-csv").addEventListener("click", exportCsv);
  $("btn-bundle").addEventListener("click", exportBundle);
  $("btn-open").addEventListener("click", () => current() && openEntry(current().seq));
  $("btn-timeline").addEventListener("click", () => openTimeline());
  $("btn-receipt").addEventListener("click", () => openReceipt());
  $("btn-more").addEventListener("click", () => loadPage());
  $("detail-close").addEventListener("click", () => { $("detail").hidden = true; });
  $("timeline-close").addEventListener("click", () => { $("timeline").hidden = true; });
  $("receipt-close").addEventListener("click", () => { $("receipt").hidden = true; });
  $("receipt-save").addEventListener("click", () => {
    if (!lastReceipt) return;
    const { subject, doc } = lastReceipt;
    saveBlob(new Blob([JSON.stringify(doc, null, 2)], { type: "application/json" }),
      `receipt-${subject.subject}-${subject.value}.json`);
  });
  document.addEventListener("keydown", onKey);
  const saved = sessionStorage.getItem(TOKEN_KEY);
  if (saved) signIn(saved);
}

start();
