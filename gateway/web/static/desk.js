// The desk blotter: live RFQs routed to this desk, its quotes, counters, last-look holds and
// trades. Everything comes from the gateway's public desk API with the desk's bearer token and
// from its desk stream; the gateway shows a desk only its own RFQs, and this page keeps nothing
// across a sign-out.

import { ApiError, DeskApi, NetworkError } from "./api.js";
import { DeskStream } from "./stream.js";
import {
  countdown, gatewayClock, h, packageName, parseUtc, priceInput, shortId, sideName, sizeInput,
  timeOf,
} from "./util.js";

const TOKEN_KEY = "fixbridge.desk.token";
const LOG_LINES = 60;
const $ = (id) => document.getElementById(id);

/** The signed-in desk and everything shown for it; null when signed out. Every asynchronous
 *  answer checks it is still the current session before touching the page, so nothing of one
 *  token ever shows under another. */
let session = null;

function newSession(token) {
  return {
    token,
    api: new DeskApi(token),
    stream: null,
    deskId: null,
    rfqs: new Map(), // rfq_id -> {rfq, state, quotes: Map, counters: Map, hold, passed}
    selected: null,
    marked: new Set(),
    trades: [],
    tradesGen: 0,
    tradePoll: null,
    resyncGen: 0,
    seq: 0, // events applied so far; an entry's "touched" is the seq of its latest event
    closed: new Set(), // RFQs withdrawn or finished: an older read never brings them back
    refreshing: new Set(),
    refreshAgain: new Set(),
    log: [],
    down: false,
  };
}

const current = (s) => session === s;

// --- signing in and out ---------------------------------------------------------------------

async function signIn(token) {
  signOut();
  const s = newSession(token);
  session = s;
  setConn("connecting", "signing in…");
  $("sign-in-error").textContent = "";
  let me;
  try {
    me = await s.api.me();
  } catch (err) {
    if (!current(s)) return;
    signOut();
    $("token").value = "";
    $("sign-in-error").textContent =
      err.status === 401 ? "Token refused by the gateway."
        : err.status === 403 ? "This token is not a desk's." : err.message;
    return;
  }
  if (!current(s)) return;
  s.deskId = me.desk_id;
  sessionStorage.setItem(TOKEN_KEY, token);
  $("token").value = "";
  $("desk-id").textContent = me.desk_id;
  addLog(s, `signed in as ${me.desk_id} (${me.token_name})`);
  showBlotter(true);
  s.stream = new DeskStream(token, {
    onEvent: (event) => onEvent(s, event),
    onState: (state, info) => onStreamState(s, state, info),
  });
  s.stream.start();
  resync(s);
  $("rfq-table").focus();
}

/** Forget the token and everything shown: tables, panels, marks, log, dialogs. */
function signOut() {
  const s = session;
  session = null;
  if (s) {
    s.stream?.stop();
    clearTimeout(s.tradePoll);
  }
  sessionStorage.removeItem(TOKEN_KEY);
  gatewayClock.reset();
  for (const dialog of document.querySelectorAll("dialog[open]")) dialog.close();
  $("desk-id").textContent = "";
  showProtection(null);
  $("blotter").classList.remove("stale");
  hideBanner();
  setConn("signed-out", "signed out");
  showBlotter(false);
  render();
}

function showBlotter(signedIn) {
  $("blotter").hidden = !signedIn;
  $("sign-in").hidden = signedIn;
  $("sign-out").hidden = !signedIn;
  $("desk-id").hidden = !signedIn;
  if (!signedIn) $("token").focus();
}

function setConn(state, text) {
  const pill = $("conn");
  pill.dataset.state = state;
  pill.textContent = text;
}

function showBanner(...content) {
  const banner = $("banner");
  banner.replaceChildren(...content);
  banner.hidden = false;
}

function hideBanner() {
  $("banner").hidden = true;
  $("banner").replaceChildren();
}

// --- the stream -----------------------------------------------------------------------------

function onStreamState(s, state, info) {
  if (!current(s)) return;
  $("blotter").classList.toggle("stale", state === "reconnecting");
  if (state === "connecting") {
    setConn("connecting", "connecting…");
  } else if (state === "live") {
    setConn("live", "live");
    hideBanner();
    if (s.down) addLog(s, "stream back: resynchronised");
    s.down = false;
    resync(s);
  } else if (state === "reconnecting") {
    if (!s.down) addLog(s, `stream lost (close ${info.code}): reconnecting`, "err");
    s.down = true;
    setConn("reconnecting", "reconnecting…");
    showBanner(
      h("strong", {}, "Reconnecting… "),
      `the live stream is down (close ${info.code}); try ${info.attempt} in `,
      timer(Date.now() + info.delayMs, { local: true }),
      ". What is shown may be stale until it is back.",
    );
    checkToken(s);
  }
  render();
}

/** A stream that cannot connect may mean the token was withdrawn: ask the API. */
async function checkToken(s) {
  try {
    await s.api.me();
  } catch (err) {
    if (!current(s) || !(err instanceof ApiError) || ![401, 403].includes(err.status)) return;
    signOut();
    $("sign-in-error").textContent = "The gateway no longer accepts this token; sign in again.";
  }
}

function rfqIdOf(event) {
  return event.rfq_id ?? event.rfq?.rfq_id ?? event.sealed?.quote?.rfq_id
    ?? event.counter?.rfq_id ?? event.trade?.rfq_id ?? null;
}

function onEvent(s, event) {
  if (!current(s)) return;
  if (event.at) gatewayClock.observe(event.at);
  // the gateway sends a desk only its own events; a stray one is never shown
  if (event.desk_id && event.desk_id !== s.deskId) return;
  const rfqId = rfqIdOf(event);
  s.seq += 1;
  const entry = rfqId ? s.rfqs.get(rfqId) : undefined;
  if (entry) entry.touched = s.seq;
  const name = rfqId ? shortId(rfqId) : "";
  switch (event.event) {
    case "RfqToDesk": {
      const { rfq } = event;
      if (s.closed.has(rfq.rfq_id)) break;
      s.rfqs.set(rfq.rfq_id, { ...newEntry(rfq, "Open"), touched: s.seq });
      if (!s.selected) s.selected = rfq.rfq_id;
      addLog(s, `new RFQ ${name} from ${rfq.client_id}: ${packageName(rfq)} `
        + `${sideName(rfq.side)} ${rfq.quantity}`);
      break;
    }
    case "QuoteAcknowledged": {
      const quote = event.sealed.quote;
      if (entry) {
        if (quote.replaces_quote_id) entry.quotes.delete(quote.replaces_quote_id);
        if (quote.counter_id) entry.counters.delete(quote.counter_id);
        entry.quotes.set(quote.quote_id, quote);
      }
      addLog(s, `quote ${shortId(quote.quote_id)} live on ${name}: `
        + `${quote.bid_px ?? "—"} / ${quote.offer_px ?? "—"} ${quote.firmness.replace("_", " ")}`,
      "ok");
      break;
    }
    case "QuoteStatusChanged":
      if (entry) {
        entry.quotes.delete(event.quote_id);
        dropCountersOn(entry, event.quote_id);
        if (entry.hold?.quote_id === event.quote_id) entry.hold = null;
      }
      addLog(s, `quote ${shortId(event.quote_id)} left the market: ${event.reason}`);
      break;
    case "CounterToDesk":
      if (entry) entry.counters.set(event.counter.counter_id, event.counter);
      addLog(s, `counter on ${name}: client ${sideName(event.counter.side).toLowerCase()}s `
        + `${event.counter.quantity} at ${event.counter.price}`, "warn");
      break;
    case "ClientPassed":
      addLog(s, `client passed on ${event.quote_id ? `quote ${shortId(event.quote_id)}` : name}`);
      break;
    case "LastLookRequested":
      if (entry) entry.hold = event;
      addLog(s, `LAST LOOK on ${name}: client ${sideName(event.side).toLowerCase()}s `
        + `${event.quantity} at ${event.price}`, "warn");
      break;
    case "TradeCaptured": {
      const { trade } = event;
      if (entry) {
        entry.hold = null;
        entry.quotes.delete(trade.quote_id);
      }
      addLog(s, `TRADE ${shortId(trade.trade_id)} on ${name}: client `
        + `${sideName(trade.side).toLowerCase()}s ${trade.quantity} at ${trade.price}`, "ok");
      loadTrades(s);
      break;
    }
    case "DoneAway":
      addLog(s, `${name} traded away`);
      break;
    case "Cover":
      addLog(s, `${name}: quote ${shortId(event.quote_id)} was cover`);
      break;
    case "RfqWithdrawn":
      removeRfq(s, event.rfq_id);
      addLog(s, `${name} closed: ${event.state} (${event.reason})`);
      render();
      return;
    case "DeskActionRejected":
      addLog(s, `refused ${event.action}: ${event.text}`, "err");
      break;
    case "DeskProtectionTripped":
      showProtection({ frozen: true, reason: event.reason });
      addLog(s, `PROTECTION TRIPPED: ${event.reason}; quotes pulled, quoting frozen`, "err");
      break;
    case "DeskProtectionReset":
      showProtection(null);
      addLog(s, "protection reset: quoting again", "ok");
      break;
    default:
      break;
  }
  if (rfqId && event.event !== "RfqToDesk") refreshSoon(s, rfqId);
  render();
}

function newEntry(rfq, state) {
  return {
    rfq, state, quotes: new Map(), counters: new Map(), hold: null, passed: false, touched: 0,
  };
}

function dropCountersOn(entry, quoteId) {
  for (const [id, counter] of entry.counters) {
    if (counter.quote_id === quoteId) entry.counters.delete(id);
  }
}

function removeRfq(s, rfqId) {
  s.closed.add(rfqId);
  if (!s.rfqs.has(rfqId)) return;
  if (s.selected === rfqId) s.selected = neighbour(s, rfqId);
  s.rfqs.delete(rfqId);
  s.marked.delete(rfqId);
}

// --- reading state back from the API ----------------------------------------------------------

/** The RFQs routed to this desk, read whole: at sign-in and after every (re)connection. */
//
// A read is a snapshot taken some time after it was asked for; events keep coming meanwhile. An
// RFQ that an event touched after the read was asked for keeps what the events made of it, and
// is read again (an event during a read always asks for one more), so a slow snapshot never
// undoes a newer event: a last-look hold or counter that came in the meantime stays shown.
async function resync(s) {
  const gen = ++s.resyncGen;
  const asked = s.seq;
  let items;
  try {
    items = await s.api.rfqs();
  } catch (err) {
    if (current(s)) addLog(s, `could not read RFQs: ${err.message}`, "err");
    return;
  }
  if (!current(s) || gen !== s.resyncGen) return;
  const next = new Map();
  for (const item of items) {
    const id = item.rfq.rfq_id;
    gatewayClock.observe(item.rfq.requested_at);
    if (s.closed.has(id)) continue;
    const old = s.rfqs.get(id);
    next.set(id, old && old.touched > asked ? old : merged(old, item));
  }
  for (const [id, old] of s.rfqs) {
    if (old.touched > asked && !next.has(id)) next.set(id, old); // newer than the snapshot
  }
  s.rfqs = next;
  for (const [id, entry] of next) if (entry.touched > asked) refreshSoon(s, id);
  for (const id of s.marked) if (!next.has(id)) s.marked.delete(id);
  if (!next.has(s.selected)) s.selected = ordered(s)[0]?.rfq.rfq_id ?? null;
  render();
  loadTrades(s);
  loadProtection(s);
  // counters and holds arrive as events; one missed while away is found in the RFQ's history
  const open = [...next.values()].filter(
    (e) => e.state === "Negotiating" || e.state === "PendingExecution");
  await Promise.all(open.map((e) => recover(s, e.rfq.rfq_id)));
}

/** An RFQ as GET /desk/rfqs{/id} shows it, keeping what only events told (counters, hold)
 *  where the snapshot agrees they are still there. */
function merged(old, item) {
  const entry = newEntry(item.rfq, item.state);
  entry.touched = old?.touched ?? 0;
  for (const sealed of item.my_quotes) entry.quotes.set(sealed.quote.quote_id, sealed.quote);
  if (old) {
    entry.passed = old.passed;
    for (const [id, counter] of old.counters) {
      if (entry.quotes.has(counter.quote_id)) entry.counters.set(id, counter);
    }
    if (item.state === "PendingExecution") entry.hold = old.hold;
  }
  return entry;
}

async function recover(s, rfqId, tries = 3) {
  const asked = s.seq;
  let record;
  try {
    record = await s.api.history(rfqId);
  } catch {
    return;
  }
  const entry = s.rfqs.get(rfqId);
  if (!current(s) || !entry) return;
  if (entry.touched > asked) {
    if (tries > 1) recover(s, rfqId, tries - 1); // events since: read a newer history
    return;
  }
  const counters = new Map();
  let hold = null;
  for (const event of record.history) {
    if (event.event === "CounterToDesk") counters.set(event.counter.counter_id, event.counter);
    if (event.event === "QuoteAcknowledged") counters.delete(event.sealed.quote.counter_id);
    if (event.event === "LastLookRequested") hold = event;
    if (event.event === "LastLookResolved" && hold?.quote_id === event.quote_id) hold = null;
    if (event.event === "TradeCaptured") hold = null;
  }
  for (const [id, counter] of counters) {
    if (!entry.quotes.has(counter.quote_id)) counters.delete(id);
  }
  entry.counters = counters;
  entry.hold = entry.state === "PendingExecution" ? hold : null;
  render();
}

/** Re-read one RFQ after an event about it (its state, this desk's live quotes). */
function refreshSoon(s, rfqId) {
  if (s.refreshing.has(rfqId)) {
    s.refreshAgain.add(rfqId);
    return;
  }
  s.refreshing.add(rfqId);
  const asked = s.seq;
  s.api.rfq(rfqId)
    .then((item) => {
      if (!current(s) || s.closed.has(rfqId)) return;
      const old = s.rfqs.get(rfqId);
      if (old && old.touched > asked) return; // an event came meanwhile: read again (finally)
      s.rfqs.set(rfqId, merged(old, item));
      render();
    })
    .catch((err) => {
      if (!current(s)) return;
      if (err instanceof ApiError && [403, 404].includes(err.status)) {
        removeRfq(s, rfqId); // finished (archived) or no longer this desk's
        render();
      }
    })
    .finally(() => {
      s.refreshing.delete(rfqId);
      if (s.refreshAgain.delete(rfqId) && current(s)) refreshSoon(s, rfqId);
    });
}

/** This desk's trades; polled while a clearing status is still pending. */
async function loadTrades(s) {
  const gen = ++s.tradesGen;
  clearTimeout(s.tradePoll);
  let trades;
  try {
    trades = await s.api.trades(50);
  } catch (err) {
    if (current(s) && !(err instanceof NetworkError)) {
      addLog(s, `could not read trades: ${err.message}`, "err");
    }
    return;
  }
  if (!current(s) || gen !== s.tradesGen) return;
  s.trades = trades;
  render();
  if (trades.some((t) => t.clearing_status === "pending")) {
    s.tradePoll = setTimeout(() => loadTrades(s), 1000);
  }
}

// --- actions --------------------------------------------------------------------------------

function selectedEntry() {
  return session?.rfqs.get(session.selected) ?? null;
}

function liveQuote(entry) {
  return entry ? [...entry.quotes.values()].at(-1) ?? null : null;
}

async function act(what, fn, okText) {
  const s = session;
  if (!s) return null;
  try {
    const result = await fn(s.api);
    if (current(s) && okText) addLog(s, typeof okText === "function" ? okText(result) : okText,
      "ok");
    return result;
  } catch (err) {
    if (current(s)) addLog(s, `${what} failed: ${err.message}`, "err");
    return null;
  } finally {
    if (current(s)) render();
  }
}

async function cancelQuotesOn(entry) {
  if (!entry) return;
  const quotes = [...entry.quotes.keys()];
  if (!quotes.length) {
    addLog(session, `no live quote of mine on ${shortId(entry.rfq.rfq_id)}`);
    render();
    return;
  }
  for (const quoteId of quotes) {
    await act("cancel", (api) => api.cancel(quoteId), `cancelled quote ${shortId(quoteId)}`);
  }
}

// --- market maker protection --------------------------------------------------------------

/** Show whether the desk's quoting is frozen (``guard`` as GET /desk/protection answers). */
function showProtection(guard) {
  const frozen = Boolean(guard?.frozen);
  $("mmp").hidden = !frozen;
  $("mmp-reset").hidden = !frozen;
  $("mmp").title = frozen ? `market maker protection tripped: ${guard.reason}` : "";
}

async function loadProtection(s) {
  try {
    const guard = await s.api.protection();
    if (current(s)) showProtection(guard);
  } catch (err) {
    if (current(s)) addLog(s, `could not read protection: ${err.message}`, "err");
  }
}

async function resetProtection() {
  const guard = await act("reset protection", (api) => api.resetProtection(), null);
  if (guard) showProtection(guard);
}

async function cancelAll() {
  await act("cancel all", (api) => api.cancelAll(), (r) => `cancel all: ${r.cancelled} withdrawn`);
}

async function passOn(entry) {
  if (!entry) return;
  const name = shortId(entry.rfq.rfq_id);
  const sure = await confirmDialog(
    `Pass on ${name} (${entry.rfq.client_id}, ${packageName(entry.rfq)})? `
    + "Any live quote of this desk on it is withdrawn.");
  if (!sure || !session) return;
  const done = await act("pass", (api) => api.pass(entry.rfq.rfq_id), `passed on ${name}`);
  if (done && session.rfqs.get(entry.rfq.rfq_id)) {
    session.rfqs.get(entry.rfq.rfq_id).passed = true;
    refreshSoon(session, entry.rfq.rfq_id);
    render();
  }
}

async function declineCounter(entry, counterId) {
  const rfqId = entry.rfq.rfq_id;
  const done = await act("decline", (api) => api.answerCounter(counterId, null),
    `declined counter ${shortId(counterId)}`);
  const now = session?.rfqs.get(rfqId); // the entry may have been read back meanwhile
  if (done && now) {
    now.counters.delete(counterId);
    render();
  }
}

function firstHold() {
  if (!session) return null;
  const holds = [...session.rfqs.values()].filter((e) => e.hold)
    .sort((a, b) => a.hold.hold_deadline.localeCompare(b.hold.hold_deadline));
  return holds[0] ?? null;
}

async function decideHold(entry, confirm) {
  if (!entry?.hold) return;
  const { quote_id: quoteId } = entry.hold;
  const name = shortId(entry.rfq.rfq_id);
  const done = confirm
    ? await act("confirm", (api) => api.confirmLastLook(quoteId), `confirmed last look on ${name}`)
    : await act("reject", (api) => api.rejectLastLook(quoteId, "rejected on last look"),
      `rejected last look on ${name}`);
  const now = session?.rfqs.get(entry.rfq.rfq_id); // may have been read back meanwhile
  if (now?.hold?.quote_id === quoteId) {
    now.hold = null;
    refreshSoon(session, entry.rfq.rfq_id);
  }
  if (session && done && confirm) loadTrades(session);
  render();
}

function toggleMark(rfqId) {
  if (!session || !rfqId) return;
  if (session.marked.has(rfqId)) session.marked.delete(rfqId);
  else session.marked.add(rfqId);
  render();
}

// --- the quote form -------------------------------------------------------------------------

let form = null; // {kind: new|replace|counter|mass, rfqIds, quoteId, counterId}
let lastTerms = { firmness: "firm", valid: "30000" };

/** Open the quote form. kind "new" or "replace" (the desk's live quote) on one RFQ,
 *  "counter" to answer a counter with new terms, "mass" for the marked RFQs. */
function openQuote(kind, opts = {}) {
  const s = session;
  if (!s) return;
  const rfqIds = kind === "mass" ? [...s.marked].filter((id) => s.rfqs.has(id))
    : [opts.rfqId ?? s.selected].filter(Boolean);
  if (!rfqIds.length) {
    addLog(s, kind === "mass" ? "mark RFQs with x first" : "no RFQ selected");
    render();
    return;
  }
  const entry = s.rfqs.get(rfqIds[0]);
  if (!entry) return;
  let base = null;
  if (kind === "replace") {
    base = opts.quoteId ? entry.quotes.get(opts.quoteId) : liveQuote(entry);
    if (!base) kind = "new";
  }
  const counter = kind === "counter" ? entry.counters.get(opts.counterId) : null;
  if (kind === "counter" && !counter) return;
  if (kind === "counter") base = entry.quotes.get(counter.quote_id) ?? null;
  form = { kind, rfqIds, quoteId: base?.quote_id, counterId: counter?.counter_id };

  const title = {
    new: `Quote ${shortId(rfqIds[0])}`,
    replace: `Replace quote ${shortId(form.quoteId)}`,
    counter: `Answer counter ${shortId(form.counterId)}`,
    mass: `Mass quote ${rfqIds.length} RFQ${rfqIds.length > 1 ? "s" : ""}`,
  }[kind];
  $("quote-title").textContent = title;
  $("quote-about").textContent = kind === "mass"
    ? rfqIds.map((id) => `${shortId(id)} ${packageName(s.rfqs.get(id).rfq)}`).join(" · ")
    : `${entry.rfq.client_id} · ${packageName(entry.rfq)} · client ${sideName(entry.rfq.side)} `
      + `${entry.rfq.quantity}` + (counter ? ` · counter: client ${sideName(counter.side)
        .toLowerCase()}s at ${counter.price}` : "");

  const value = (v) => v ?? "";
  $("q-bid").value = value(base?.bid_px);
  $("q-offer").value = value(base?.offer_px);
  if (counter) $(counter.side === "1" ? "q-offer" : "q-bid").value = counter.price;
  $("q-bid-size").value = kind === "replace" ? value(base?.bid_size) : "";
  $("q-offer-size").value = kind === "replace" ? value(base?.offer_size) : "";
  $("q-firmness").value = base?.firmness ?? lastTerms.firmness;
  $("q-valid").value = lastTerms.valid;
  $("q-ref").value = kind === "replace" ? value(base?.desk_quote_ref) : "";
  const legs = kind === "mass" ? [] : entry.rfq.legs;
  $("q-legs").hidden = legs.length < 2;
  $("q-leg-rows").replaceChildren(...(legs.length < 2 ? [] : legs.map((leg) => {
    const priced = base?.legs?.find((l) => l.leg_no === leg.leg_no);
    return h("tr", { dataset: { leg: leg.leg_no } },
      h("td", { class: "num" }, leg.leg_no),
      h("td", {}, leg.instrument.symbol),
      h("td", {}, sideName(leg.side)),
      h("td", { class: "num" }, leg.ratio),
      h("td", {}, leg.hedge ? "hedge" : ""),
      h("td", {}, h("input", {
        class: "mono leg-bid", inputmode: "decimal", autocomplete: "off",
        "aria-label": `leg ${leg.leg_no} bid`, value: priced?.bid_px ?? "",
      })),
      h("td", {}, h("input", {
        class: "mono leg-offer", inputmode: "decimal", autocomplete: "off",
        "aria-label": `leg ${leg.leg_no} offer`, value: priced?.offer_px ?? "",
      })));
  })));
  $("quote-error").textContent = "";
  $("quote-results").hidden = true;
  $("quote-results").replaceChildren();
  $("quote-submit").disabled = false;
  $("quote-dialog").showModal();
  $("q-bid").focus();
}

/** The QuoteIn body from the form: prices exactly as typed (checked, never parsed). */
function quoteBody() {
  const body = {};
  const bid = priceInput($("q-bid").value, "bid");
  const offer = priceInput($("q-offer").value, "offer");
  if (bid) body.bid_px = bid;
  if (offer) body.offer_px = offer;
  const bidSize = sizeInput($("q-bid-size").value, "bid size");
  const offerSize = sizeInput($("q-offer-size").value, "offer size");
  if (bidSize) body.bid_size = bidSize;
  if (offerSize) body.offer_size = offerSize;
  const legs = [];
  for (const row of $("q-leg-rows").querySelectorAll("tr")) {
    const leg = { leg_no: Number(row.dataset.leg) };
    const legBid = priceInput(row.querySelector(".leg-bid").value, `leg ${leg.leg_no} bid`);
    const legOffer = priceInput(row.querySelector(".leg-offer").value,
      `leg ${leg.leg_no} offer`);
    if (legBid) leg.bid_px = legBid;
    if (legOffer) leg.offer_px = legOffer;
    if (legBid || legOffer) legs.push(leg);
  }
  if (!bid && !offer && !legs.length) throw new Error("enter a bid, an offer or both");
  if (legs.length) body.legs = legs;
  body.firmness = $("q-firmness").value;
  const valid = $("q-valid").value.trim();
  if (!/^\d{1,7}$/.test(valid) || Number(valid) < 1 || Number(valid) > 3_600_000) {
    throw new Error("valid for: whole milliseconds from 1 to 3600000");
  }
  body.valid_for_ms = Number(valid);
  const ref = $("q-ref").value.trim();
  if (ref) body.desk_quote_ref = ref;
  lastTerms = { firmness: body.firmness, valid };
  return body;
}

async function submitQuote() {
  const s = session;
  if (!s || !form || $("quote-submit").disabled) return;
  let body;
  try {
    body = quoteBody();
  } catch (err) {
    $("quote-error").textContent = err.message;
    return;
  }
  $("quote-error").textContent = "";
  $("quote-submit").disabled = true;
  const { kind, rfqIds, quoteId, counterId } = form;
  try {
    if (kind === "mass") {
      const outcomes = await s.api.quoteMany(rfqIds.map((rfqId) => ({ rfqId, body })));
      if (!current(s)) return;
      showOutcomes(s, outcomes);
      return;
    }
    const result = kind === "new" ? await s.api.quote(rfqIds[0], body)
      : kind === "replace" ? await s.api.replace(quoteId, body)
        : await s.api.answerCounter(counterId, body);
    if (!current(s)) return;
    const quote = result.quote;
    addLog(s, `${kind === "new" ? "quoted" : kind === "replace" ? "replaced with"
      : "answered counter with"} ${shortId(quote.quote_id)} on ${shortId(quote.rfq_id)}`, "ok");
    applyQuote(s, quote);
    $("quote-dialog").close();
  } catch (err) {
    if (!current(s)) return;
    $("quote-error").textContent = err.message;
    if (kind === "counter" && err.status === 409) s.rfqs.get(rfqIds[0])?.counters.delete(counterId);
  } finally {
    // a mass quote is sent once: its outcomes stay on screen until the form is closed
    $("quote-submit").disabled = kind === "mass";
    render();
  }
}

/** A quote the API just acknowledged (its stream event may come before or after). */
function applyQuote(s, quote) {
  const entry = s.rfqs.get(quote.rfq_id);
  if (!entry) return;
  if (quote.replaces_quote_id) entry.quotes.delete(quote.replaces_quote_id);
  if (quote.counter_id) entry.counters.delete(quote.counter_id);
  entry.quotes.set(quote.quote_id, quote);
  s.seq += 1;
  entry.touched = s.seq;
  refreshSoon(s, quote.rfq_id);
}

function showOutcomes(s, outcomes) {
  const list = $("quote-results");
  list.replaceChildren(...outcomes.map((o) => h("li", { class: o.ok ? "ok" : "err" },
    `${shortId(o.rfqId)}: `,
    o.ok ? `quoted ${shortId(o.quote.quote.quote_id)}` : o.error.message)));
  list.hidden = false;
  let good = 0;
  for (const o of outcomes) {
    if (o.ok) {
      good += 1;
      s.marked.delete(o.rfqId);
      applyQuote(s, o.quote.quote);
    } else {
      addLog(s, `mass quote on ${shortId(o.rfqId)} failed: ${o.error.message}`, "err");
    }
  }
  addLog(s, `mass quote: ${good} of ${outcomes.length} quoted`, good ? "ok" : "err");
  $("quote-close").focus();
}

function confirmDialog(text) {
  const dialog = $("confirm-dialog");
  $("confirm-text").textContent = text;
  dialog.returnValue = "";
  dialog.showModal();
  $("confirm-yes").focus();
  return new Promise((resolve) => {
    dialog.addEventListener("close", () => resolve(dialog.returnValue === "yes"), { once: true });
  });
}

// --- rendering ------------------------------------------------------------------------------

function ordered(s) {
  return [...s.rfqs.values()].sort((a, b) => b.rfq.requested_at.localeCompare(a.rfq.requested_at));
}

function neighbour(s, rfqId) {
  const ids = ordered(s).map((e) => e.rfq.rfq_id);
  const i = ids.indexOf(rfqId);
  return ids[i + 1] ?? ids[i - 1] ?? null;
}

/** A countdown to ``deadline`` (an ISO time on the gateway's clock, or local ms if ``local``)
 *  that the ticker keeps up to date. */
function timer(deadline, { soon = 5000, local = false, from = null } = {}) {
  const at = typeof deadline === "number" ? deadline : parseUtc(deadline);
  const el = h("span", { class: "timer mono", dataset: { deadline: at, soon } });
  if (local) el.dataset.local = "1";
  if (from) el.dataset.from = parseUtc(from);
  paintTimer(el);
  return el;
}

function paintTimer(el) {
  const now = el.dataset.local ? Date.now() : gatewayClock.now();
  const deadline = Number(el.dataset.deadline);
  const left = deadline - now;
  el.textContent = countdown(left);
  el.classList.toggle("soon", left > 0 && left < Number(el.dataset.soon));
  el.classList.toggle("over", left <= 0);
  const bar = el.nextElementSibling;
  if (el.dataset.from && bar?.classList.contains("bar")) {
    const total = deadline - Number(el.dataset.from);
    const share = total > 0 ? Math.max(0, Math.min(1, left / total)) : 0;
    bar.firstElementChild.style.width = `${(share * 100).toFixed(1)}%`;
  }
}

function tick() {
  $("clock").textContent = new Date(gatewayClock.now()).toISOString().slice(11, 19);
  for (const el of document.querySelectorAll("[data-deadline]")) paintTimer(el);
  const s = session;
  if (!s) return;
  for (const entry of s.rfqs.values()) {
    // a hold past its deadline has timed out at the gateway: read the RFQ back
    if (entry.hold && parseUtc(entry.hold.hold_deadline) < gatewayClock.now() - 300
        && !entry.holdChecked) {
      entry.holdChecked = true;
      refreshSoon(s, entry.rfq.rfq_id);
    }
  }
}

/** Draw the page once the events already waiting have been applied: a burst of stream
 *  messages (each its own task, queued before this one) costs one redraw. */
let renderQueued = false;
function render() {
  if (renderQueued) return;
  renderQueued = true;
  setTimeout(() => {
    renderQueued = false;
    renderNow();
  }, 0);
}

function renderNow() {
  const focused = document.activeElement?.id;
  renderRfqs();
  renderDetail();
  renderHolds();
  renderTrades();
  renderLog();
  if (focused && document.activeElement?.id !== focused) $(focused)?.focus();
}

function renderRfqs() {
  const s = session;
  const rows = s ? ordered(s) : [];
  $("rfq-count").textContent = s ? `(${rows.length})` : "";
  $("rfq-empty").hidden = rows.length > 0;
  $("rfq-rows").replaceChildren(...rows.map((entry) => {
    const { rfq } = entry;
    const id = rfq.rfq_id;
    const quote = liveQuote(entry);
    const selected = id === s.selected;
    const marked = s.marked.has(id);
    const alerts = [
      entry.hold && h("span", { class: "badge hot" }, "LAST LOOK"),
      entry.counters.size > 0 && h("span", { class: "badge warn" }, "COUNTER"),
      entry.passed && h("span", { class: "badge" }, "passed"),
      rfq.quote_type === "0" && h("span", { class: "badge" }, "indicative"),
    ];
    return h("tr", {
      dataset: { rfq: id },
      class: [selected && "selected", marked && "marked"].filter(Boolean).join(" "),
      "aria-selected": selected ? "true" : "false",
      onclick: () => { s.selected = id; render(); },
      ondblclick: () => { s.selected = id; openQuote(quote ? "replace" : "new"); },
    },
    h("td", {}, h("input", {
      type: "checkbox", tabindex: "-1", checked: marked, "aria-label": `mark ${shortId(id)}`,
      onclick: (ev) => { ev.stopPropagation(); toggleMark(id); },
    })),
    h("td", { class: "mono", title: id }, shortId(id)),
    h("td", {}, rfq.client_id),
    h("td", { title: rfq.legs.map((l) =>
      `${sideName(l.side)} ${l.ratio} ${l.instrument.symbol}`).join("\n") },
    h("span", { class: "pkg" }, rfq.legs[0].instrument.symbol),
    rfq.legs.length > 1 ? h("span", { class: "muted" }, ` +${rfq.legs.length - 1}`) : null),
    h("td", { class: `side side-${rfq.side ?? "2way"}` }, sideName(rfq.side)),
    h("td", { class: "num" }, rfq.quantity),
    h("td", { class: `state state-${entry.state}` }, entry.state),
    h("td", { class: "alerts" }, alerts),
    h("td", { class: "num" }, timer(rfq.expire_at, { soon: 30_000 })),
    h("td", { class: "num bid" }, quote?.bid_px ?? "—"),
    h("td", { class: "num offer" }, quote?.offer_px ?? "—"),
    h("td", {}, quote ? quote.firmness.replace("_", " ") : ""),
    h("td", { class: "num" }, quote ? timer(quote.valid_until) : ""));
  }));
  $("rfq-rows").querySelector("tr.selected")?.scrollIntoView({ block: "nearest" });
}

function renderDetail() {
  const entry = selectedEntry();
  const body = $("detail-body");
  if (!entry) {
    $("detail-title").textContent = "RFQ";
    body.replaceChildren(h("p", { class: "empty" }, "Select an RFQ."));
    return;
  }
  const { rfq } = entry;
  const id = rfq.rfq_id;
  $("detail-title").textContent = shortId(id);
  const fact = (term, ...value) => [h("dt", {}, term), h("dd", {}, ...value)];
  const quotes = [...entry.quotes.values()];
  const parts = [
    h("dl", { class: "facts" },
      fact("RFQ id", h("span", { class: "mono" }, id)),
      fact("Client", `${rfq.client_id} (QuoteReqID ${rfq.quote_req_id})`),
      fact("Client side", `${sideName(rfq.side)} ${rfq.quantity}`),
      fact("Type", rfq.quote_type === "0" ? "indicative" : "tradeable"),
      fact("State", entry.state),
      fact("Requested", h("span", { class: "mono" }, timeOf(rfq.requested_at))),
      fact("Expires in", timer(rfq.expire_at, { soon: 30_000 }))),
    h("table", { class: "grid legs" },
      h("thead", {}, h("tr", {}, h("th", {}, "#"), h("th", {}, "Instrument"),
        h("th", {}, "Side"), h("th", { class: "num" }, "Ratio"), h("th", {}, ""))),
      h("tbody", {}, rfq.legs.map((leg) => h("tr", {},
        h("td", { class: "num" }, leg.leg_no), h("td", {}, leg.instrument.symbol),
        h("td", {}, sideName(leg.side)), h("td", { class: "num" }, leg.ratio),
        h("td", {}, leg.hedge ? "hedge" : ""))))),
    h("h3", {}, "My live quotes"),
    quotes.length ? quotes.map((q) => h("div", { class: "quote-card" },
      h("div", { class: "quote-line" },
        h("span", { class: "mono", title: q.quote_id }, shortId(q.quote_id)),
        h("span", {}, q.firmness.replace("_", " ")),
        h("span", { class: "muted" }, "valid ", timer(q.valid_until))),
      h("div", { class: "quote-line" },
        h("span", { class: "mono" }, h("span", { class: "muted" }, "bid "),
          h("span", { class: "bid" }, q.bid_px ?? "—"),
          q.bid_size ? h("span", { class: "muted" }, ` × ${q.bid_size}`) : null),
        h("span", { class: "mono" }, h("span", { class: "muted" }, "offer "),
          h("span", { class: "offer" }, q.offer_px ?? "—"),
          q.offer_size ? h("span", { class: "muted" }, ` × ${q.offer_size}`) : null),
        h("span", { class: "row-actions" },
          h("button", { type: "button", id: `replace-${q.quote_id}`,
            onclick: () => openQuote("replace", { quoteId: q.quote_id }) }, "Replace"),
          h("button", { type: "button", id: `cancel-${q.quote_id}`,
            onclick: () => act("cancel", (api) => api.cancel(q.quote_id),
              `cancelled quote ${shortId(q.quote_id)}`) }, "Cancel")))))
      : h("p", { class: "empty" }, entry.passed ? "Passed." : "None."),
    entry.counters.size ? h("h3", {}, "Counters") : null,
    [...entry.counters.values()].map((c) => h("div", { class: "counter" },
      h("span", {}, `Client ${sideName(c.side).toLowerCase()}s ${c.quantity} at `,
        h("strong", { class: "mono" }, c.price), ` on quote ${shortId(c.quote_id)}`),
      h("span", { class: "row-actions" },
        h("button", { type: "button", id: `answer-${c.counter_id}`,
          onclick: () => openQuote("counter", { counterId: c.counter_id }) }, "Answer…"),
        h("button", { type: "button", id: `decline-${c.counter_id}`,
          onclick: () => declineCounter(entry, c.counter_id) }, "Decline")))),
    h("div", { class: "row-actions detail-actions" },
      h("button", { type: "button", id: "detail-quote", class: "primary",
        onclick: () => openQuote(quotes.length ? "replace" : "new") },
      quotes.length ? "Replace…" : "Quote…"),
      h("button", { type: "button", id: "detail-cancel", disabled: !quotes.length,
        onclick: () => cancelQuotesOn(entry) }, "Cancel my quote"),
      h("button", { type: "button", id: "detail-pass", disabled: entry.passed,
        onclick: () => passOn(entry) }, "Pass")),
  ];
  body.replaceChildren(...parts.flat().filter(Boolean));
}

function renderHolds() {
  const s = session;
  const holds = s ? [...s.rfqs.values()].filter((e) => e.hold)
    .sort((a, b) => a.hold.hold_deadline.localeCompare(b.hold.hold_deadline)) : [];
  $("holds").hidden = holds.length === 0;
  $("hold-list").replaceChildren(...holds.map((entry, i) => {
    const hold = entry.hold;
    return h("div", { class: "hold", dataset: { quote: hold.quote_id } },
      h("div", { class: "hold-what" },
        h("strong", {}, shortId(entry.rfq.rfq_id)),
        ` ${hold.client_id} ${sideName(hold.side).toLowerCase()}s ${hold.quantity} `
          + `${packageName(entry.rfq)} at `,
        h("strong", { class: "mono" }, hold.price)),
      h("div", { class: "hold-timer" },
        h("span", { class: "muted" }, "hold "),
        timer(hold.hold_deadline, { soon: 1000, from: hold.at }),
        h("div", { class: "bar" }, h("div", { class: "fill" }))),
      h("div", { class: "row-actions" },
        h("button", { type: "button", class: "confirm", id: `confirm-${hold.quote_id}`,
          onclick: () => decideHold(entry, true) }, "Confirm", i === 0 ? h("kbd", {}, "y") : null),
        h("button", { type: "button", class: "danger", id: `reject-${hold.quote_id}`,
          onclick: () => decideHold(entry, false) }, "Reject", i === 0 ? h("kbd", {}, "n") : null)));
  }));
  // the bars only know their width once they are in the page
  for (const el of $("hold-list").querySelectorAll("[data-deadline]")) paintTimer(el);
}

const CLEARING = { cleared: "ok", pending: "warn", rejected: "err", failed: "err" };

function renderTrades() {
  const trades = session?.trades ?? [];
  $("trade-empty").hidden = trades.length > 0;
  $("trade-rows").replaceChildren(...trades.map((t) => h("tr", { dataset: { trade: t.trade_id } },
    h("td", { class: "mono" }, timeOf(t.executed_at)),
    h("td", { class: "mono", title: t.trade_id }, shortId(t.trade_id)),
    h("td", { class: "mono", title: t.rfq_id ?? "" }, shortId(t.rfq_id)),
    h("td", {}, t.client.party_id),
    h("td", { class: `side side-${t.side}` }, sideName(t.side)),
    h("td", {}, t.legs.map((l) => l.product.symbol).join(" / ")),
    h("td", { class: "num" }, t.quantity),
    h("td", { class: "num" }, t.price),
    h("td", {}, t.currency),
    h("td", {}, h("span", { class: `pill clearing ${CLEARING[t.clearing_status] ?? ""}`,
      dataset: { status: t.clearing_status } }, t.clearing_status.replace("_", " "))))));
}

function addLog(s, text, kind = "") {
  s.log.unshift({ at: new Date(gatewayClock.now()).toISOString().slice(11, 23), text, kind });
  s.log.length = Math.min(s.log.length, LOG_LINES);
}

function renderLog() {
  const lines = session?.log ?? [];
  $("log").replaceChildren(...lines.map((line) => h("li", { class: line.kind },
    h("span", { class: "mono muted" }, line.at), " ", line.text)));
}

// --- keys -----------------------------------------------------------------------------------

function move(step) {
  const s = session;
  const ids = ordered(s).map((e) => e.rfq.rfq_id);
  if (!ids.length) return;
  const i = ids.indexOf(s.selected);
  const next = i < 0 ? 0 : Math.max(0, Math.min(ids.length - 1, i + step));
  s.selected = ids[next];
  render();
}

const KEYS = {
  j: () => move(1),
  ArrowDown: () => move(1),
  k: () => move(-1),
  ArrowUp: () => move(-1),
  Home: () => move(-Infinity),
  End: () => move(Infinity),
  Enter: () => openQuote(liveQuote(selectedEntry()) ? "replace" : "new"),
  q: () => openQuote(liveQuote(selectedEntry()) ? "replace" : "new"),
  r: () => openQuote("replace"),
  c: () => cancelQuotesOn(selectedEntry()),
  C: () => cancelAll(),
  p: () => passOn(selectedEntry()),
  x: () => toggleMark(session.selected),
  " ": () => toggleMark(session.selected),
  m: () => openQuote("mass"),
  a: () => {
    const counter = [...(selectedEntry()?.counters.values() ?? [])][0];
    if (counter) openQuote("counter", { counterId: counter.counter_id });
  },
  d: () => {
    const entry = selectedEntry();
    const counter = [...(entry?.counters.values() ?? [])][0];
    if (counter) declineCounter(entry, counter.counter_id);
  },
  y: () => decideHold(firstHold(), true),
  n: () => decideHold(firstHold(), false),
  Escape: () => {
    session.marked.clear();
    render();
  },
};

function onKey(event) {
  if (!session?.deskId || document.querySelector("dialog[open]")) return;
  if (event.ctrlKey || event.metaKey || event.altKey) return;
  const target = event.target;
  if (target.matches?.("input:not([type=checkbox]), select, textarea")) return;
  // Enter and Space on a focused button press that button
  if (target.matches?.("button, a[href]") && (event.key === "Enter" || event.key === " ")) return;
  const action = KEYS[event.key];
  if (!action) return;
  event.preventDefault();
  action();
}

// --- wiring ---------------------------------------------------------------------------------

function wire() {
  $("sign-in-form").addEventListener("submit", (event) => {
    event.preventDefault();
    const token = $("token").value.trim();
    if (token) signIn(token);
  });
  $("sign-out").addEventListener("click", () => signOut());
  $("btn-quote").addEventListener("click", KEYS.Enter);
  $("btn-mark").addEventListener("click", KEYS.x);
  $("btn-mass").addEventListener("click", KEYS.m);
  $("btn-pass").addEventListener("click", KEYS.p);
  $("btn-cancel-all").addEventListener("click", KEYS.C);
  $("mmp-reset").addEventListener("click", () => resetProtection());
  $("quote-form").addEventListener("submit", (event) => {
    event.preventDefault();
    submitQuote();
  });
  $("quote-close").addEventListener("click", () => $("quote-dialog").close());
  $("quote-dialog").addEventListener("close", () => {
    form = null;
  });
  document.addEventListener("keydown", onKey);
  setInterval(tick, 100);
  const saved = sessionStorage.getItem(TOKEN_KEY);
  if (saved) signIn(saved);
  else signOut();
}

wire();
