// The desk's event stream (WebSocket /desk/stream), reconnecting with backoff.
//
// A browser cannot put an Authorization header on a WebSocket, so the token is offered as a
// subprotocol, "fixbridge.bearer.<base64url(token)>", next to "fixbridge.desk.v1", which is the
// one the gateway answers with. The token never goes into the URL.

const STREAM_PROTOCOL = "fixbridge.desk.v1";
const BEARER_PREFIX = "fixbridge.bearer.";
const FIRST_DELAY_MS = 500;
const MAX_DELAY_MS = 10_000;

function base64url(text) {
  let binary = "";
  for (const byte of new TextEncoder().encode(text)) binary += String.fromCharCode(byte);
  return btoa(binary).replace(/\+/g, "-").replace(/\//g, "_").replace(/=+$/, "");
}

/** States reported to ``onState(state, info)``: "connecting" (first attempt), "live",
 *  "reconnecting" ({attempt, delayMs, code}: the next attempt is in delayMs), "stopped". */
export class DeskStream {
  constructor(token, { onEvent, onState }) {
    const scheme = location.protocol === "https:" ? "wss" : "ws";
    this.url = `${scheme}://${location.host}/desk/stream`;
    this.protocols = [STREAM_PROTOCOL, BEARER_PREFIX + base64url(token)];
    this.onEvent = onEvent;
    this.onState = onState;
    this.attempt = 0;
    this.socket = null;
    this.timer = null;
    this.stopped = false;
  }

  start() {
    this.stopped = false;
    this.onState("connecting", {});
    this.connect();
  }

  stop() {
    this.stopped = true;
    clearTimeout(this.timer);
    if (this.socket) {
      const socket = this.socket;
      this.socket = null;
      socket.onclose = socket.onmessage = socket.onerror = socket.onopen = null;
      socket.close(1000, "signed out");
    }
    this.onState("stopped", {});
  }

  connect() {
    const socket = new WebSocket(this.url, this.protocols);
    this.socket = socket;
    socket.onopen = () => {
      this.attempt = 0;
      this.onState("live", {});
    };
    socket.onmessage = (message) => {
      let event;
      try {
        event = JSON.parse(message.data);
      } catch {
        return;
      }
      this.onEvent(event);
    };
    socket.onclose = (closed) => {
      if (this.stopped || socket !== this.socket) return;
      this.socket = null;
      this.attempt += 1;
      const base = Math.min(MAX_DELAY_MS, FIRST_DELAY_MS * 2 ** (this.attempt - 1));
      const delayMs = Math.round(base * (0.8 + 0.4 * Math.random()));
      this.onState("reconnecting", { attempt: this.attempt, delayMs, code: closed.code });
      this.timer = setTimeout(() => this.connect(), delayMs);
    };
  }
}
