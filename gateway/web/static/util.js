// Small helpers shared by the gateway's pages: DOM building, UTC times, the gateway's clock,
// decimal input checks. Prices and sizes are strings end to end: nothing here turns them into
// JavaScript numbers.

/** An element: h("td", {class: "num", title: "x"}, "text", childNode, null). Strings become
 *  text nodes (never HTML); null/undefined/false children are skipped. */
export function h(tag, attrs = {}, ...children) {
  const el = document.createElement(tag);
  for (const [key, value] of Object.entries(attrs || {})) {
    if (value === null || value === undefined || value === false) continue;
    if (key.startsWith("on") && typeof value === "function") {
      el.addEventListener(key.slice(2), value);
    } else if (key === "class") {
      el.className = value;
    } else if (key === "dataset") {
      Object.assign(el.dataset, value);
    } else if (value === true) {
      el.setAttribute(key, "");
    } else {
      el.setAttribute(key, String(value));
    }
  }
  for (const child of children.flat()) {
    if (child === null || child === undefined || child === false) continue;
    el.append(child instanceof Node ? child : document.createTextNode(String(child)));
  }
  return el;
}

/** Milliseconds since the epoch of the gateway's ISO 8601 UTC time ("...T01:02:03.456789Z"). */
export function parseUtc(iso) {
  if (!iso) return NaN;
  // the gateway sends microseconds; Date wants at most milliseconds
  return Date.parse(iso.replace(/(\.\d{3})\d+/, "$1"));
}

/** HH:MM:SS.mmm of a gateway UTC time, read off the string itself. */
export function timeOf(iso) {
  return iso ? iso.slice(11, 23) : "";
}

/** The gateway's clock as this browser best knows it. Every gateway timestamp seen (an event's
 *  "at", an RFQ's "requested_at") happened before it was seen, so (timestamp - local time on
 *  arrival) is a lower bound of the gateway's lead over the local clock; the largest bound seen
 *  is the estimate. Countdowns tick from the gateway's deadlines on this clock, so a browser
 *  whose clock is off still counts down right. */
export const gatewayClock = {
  skew: null,
  observe(iso) {
    const at = parseUtc(iso);
    if (Number.isNaN(at)) return;
    const bound = at - Date.now();
    if (this.skew === null || bound > this.skew) this.skew = bound;
  },
  now() {
    return Date.now() + (this.skew ?? 0);
  },
  reset() {
    this.skew = null;
  },
};

/** A countdown for ``ms`` left: "12.3s" under a minute, "4:05" under an hour, then "2h05m". */
export function countdown(ms) {
  if (!(ms > 0)) return "0.0s";
  if (ms < 60_000) return `${(Math.floor(ms / 100) / 10).toFixed(1)}s`;
  const s = Math.floor(ms / 1000);
  if (s < 3600) return `${Math.floor(s / 60)}:${String(s % 60).padStart(2, "0")}`;
  return `${Math.floor(s / 3600)}h${String(Math.floor((s % 3600) / 60)).padStart(2, "0")}m`;
}

const PRICE = /^-?\d{1,18}(\.\d{1,12})?$/;
const SIZE = /^\d{1,18}(\.\d{1,12})?$/;

/** A price as typed ("4100", "-12.5"), trimmed; "" if empty; throws if it is not a decimal. */
export function priceInput(value, what) {
  const text = value.trim();
  if (text === "") return "";
  if (!PRICE.test(text)) throw new Error(`${what}: "${text}" is not a decimal price`);
  return text;
}

/** A positive size as typed, trimmed; "" if empty; throws otherwise. */
export function sizeInput(value, what) {
  const text = value.trim();
  if (text === "") return "";
  if (!SIZE.test(text) || /^[0.]+$/.test(text)) {
    throw new Error(`${what}: "${text}" is not a positive decimal`);
  }
  return text;
}

export const SIDES = { 1: "Buy", 2: "Sell" };

/** The client's side as a word ("Buy", "Sell") or "Two-way" for a request without one. */
export function sideName(code) {
  return SIDES[code] ?? "Two-way";
}

/** The distinctive tail of a gateway id ("20261207015307-RFQ-00000001" -> "RFQ-00000001"). */
export function shortId(id) {
  if (!id) return "";
  const parts = id.split("-");
  return parts.length > 2 ? parts.slice(-2).join("-") : id;
}

/** What a package is: its first leg's symbol, and "+n" for further legs. */
export function packageName(rfq) {
  const legs = rfq.legs || [];
  if (!legs.length) return "";
  const first = legs[0].instrument ? legs[0].instrument.symbol : legs[0].symbol;
  const name = legs.length > 1 ? `${first} +${legs.length - 1}` : first;
  return rfq.label ? `${rfq.label} (${name})` : name; // the client's name for its strategy
}
