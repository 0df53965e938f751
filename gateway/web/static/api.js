// The gateway's public API, called with the user's bearer token: the desk's (DeskApi) or
// compliance's (ComplianceApi). Bodies go out as JSON
// with prices as the strings the user typed; answers come back with prices as strings.

export class ApiError extends Error {
  constructor(status, title, detail) {
    super(detail ? `${status} ${title}: ${detail}` : `${status} ${title}`);
    this.status = status;
    this.title = title;
    this.detail = detail;
  }
}

/** No answer at all: the gateway is down or unreachable. */
export class NetworkError extends Error {}

/** Calls to the gateway's API with a bearer token (never a cookie). */
export class BearerApi {
  constructor(token) {
    this.token = token;
  }

  async fetch(method, path, body, accept = "application/json") {
    const headers = { Authorization: `Bearer ${this.token}`, Accept: accept };
    const init = { method, headers, cache: "no-store", credentials: "omit" };
    if (body !== undefined) {
      headers["Content-Type"] = "application/json";
      init.body = JSON.stringify(body);
    }
    try {
      return await fetch(path, init);
    } catch (err) {
      throw new NetworkError(`gateway unreachable (${err.message})`);
    }
  }

  /** A file the API answers with (a CSV, a tar), as a Blob; errors as ApiError. */
  async blob(method, path, body) {
    const response = await this.fetch(method, path, body, "*/*");
    if (!response.ok) {
      let data = null;
      try {
        data = await response.json();
      } catch {
        data = null;
      }
      throw new ApiError(response.status, data?.title ?? response.statusText, data?.detail ?? "");
    }
    return response.blob();
  }

  async call(method, path, body) {
    const response = await this.fetch(method, path, body);
    const text = await response.text();
    let data = null;
    if (text) {
      try {
        data = JSON.parse(text);
      } catch {
        data = null;
      }
    }
    if (!response.ok) {
      throw new ApiError(response.status, data?.title ?? response.statusText, data?.detail ?? "");
    }
    return data;
  }
}

export class DeskApi extends BearerApi {
  me() {
    return this.call("GET", "/desk/me");
  }

  rfqs() {
    return this.call("GET", "/desk/rfqs?limit=1000");
  }

  rfq(rfqId) {
    return this.call("GET", `/desk/rfqs/${encodeURIComponent(rfqId)}`);
  }

  /** The RFQ with this desk's part of its negotiation history (counters, last-look holds). */
  history(rfqId) {
    return this.call("GET", `/rfqs/${encodeURIComponent(rfqId)}`);
  }

  quote(rfqId, body) {
    return this.call("POST", `/desk/rfqs/${encodeURIComponent(rfqId)}/quotes`, body);
  }

  /** Quote several RFQs; one outcome per item, in order: {rfqId, ok, quote} or {rfqId, ok,
   *  error}. Partial success is normal. One POST per RFQ for now: a batch route can replace
   *  this loop without its callers changing. */
  async quoteMany(items) {
    const settled = await Promise.allSettled(
      items.map(({ rfqId, body }) => this.quote(rfqId, body)),
    );
    return settled.map((outcome, i) =>
      outcome.status === "fulfilled"
        ? { rfqId: items[i].rfqId, ok: true, quote: outcome.value }
        : { rfqId: items[i].rfqId, ok: false, error: outcome.reason },
    );
  }

  replace(quoteId, body) {
    return this.call("PUT", `/desk/quotes/${encodeURIComponent(quoteId)}`, body);
  }

  cancel(quoteId) {
    return this.call("DELETE", `/desk/quotes/${encodeURIComponent(quoteId)}`);
  }

  cancelAll() {
    return this.call("DELETE", "/desk/quotes");
  }

  protection() {
    return this.call("GET", "/desk/protection");
  }

  resetProtection() {
    return this.call("POST", "/desk/protection/reset");
  }

  pass(rfqId) {
    return this.call("POST", `/desk/rfqs/${encodeURIComponent(rfqId)}/pass`);
  }

  /** New terms answer the counter with a new quote; null terms decline it. */
  answerCounter(counterId, quote, text) {
    const body = quote ? { quote } : { text: text || null };
    return this.call("POST", `/desk/counters/${encodeURIComponent(counterId)}/answer`, body);
  }

  confirmLastLook(quoteId) {
    return this.call("POST", `/desk/quotes/${encodeURIComponent(quoteId)}/last-look/confirm`);
  }

  rejectLastLook(quoteId, text) {
    return this.call("POST", `/desk/quotes/${encodeURIComponent(quoteId)}/last-look/reject`,
      { text: text || null });
  }

  trades(limit = 50) {
    return this.call("GET", `/trades?limit=${limit}`);
  }
}

/** The compliance console's routes (compliance or admin token). */
export class ComplianceApi extends BearerApi {
  me() {
    return this.call("GET", "/compliance/me");
  }

  /** filters: {client, desk, cl_ord_id, order_id, rfq_id, quote_id, trade_id, kind, from, to} */
  search(filters, after = null, limit = 100) {
    const params = new URLSearchParams();
    for (const [key, value] of Object.entries(filters)) {
      if (value) params.set(key, value);
    }
    if (after !== null) params.set("after", String(after));
    params.set("limit", String(limit));
    return this.call("GET", `/compliance/search?${params}`);
  }

  entry(seq) {
    return this.call("GET", `/compliance/entries/${encodeURIComponent(seq)}`);
  }

  timeline(subject, value) {
    return this.call("GET",
      `/compliance/timeline/${encodeURIComponent(subject)}/${encodeURIComponent(value)}`);
  }

  receipt(subject, value) {
    return this.call("GET",
      `/compliance/receipts/${encodeURIComponent(subject)}/${encodeURIComponent(value)}`);
  }

  startCsv(filters) {
    return this.call("POST", "/compliance/exports", filters);
  }

  csvProgress(jobId) {
    return this.call("GET", `/compliance/exports/${encodeURIComponent(jobId)}`);
  }

  csv(jobId) {
    return this.blob("GET", `/compliance/exports/${encodeURIComponent(jobId)}/csv`);
  }

  /** The signed, self-verifying bundle (tar) of a time range; times ISO with Z or null. */
  bundle(frm, to) {
    return this.blob("POST", "/audit/export", { frm: frm || null, to: to || null });
  }
}
