// A node's live log over the SSE route, read with fetch() so each request can carry its
// signature (EventSource cannot send headers). The cursor of the last line shown is resent as
// Last-Event-ID on every reconnect, so a dropped connection resumes with no gap and no repeat.
import { ApiError, currentSession, errorFrom, signedHeaders } from "./api.js";

const RETRY_MS = [500, 1000, 2000, 4000];

export class LogTail {
  constructor(node, { onLine, onStatus, onState, tail = 100 }) {
    this.node = node;
    this.onLine = onLine;
    this.onStatus = onStatus || (() => {});
    this.onState = onState || (() => {});
    this.tail = tail;
    this.cursor = null; // id of the last line handed to onLine
    this.stopped = false;
    this.connections = 0;
    this.controller = null;
  }

  start() {
    this.run();
    return this;
  }

  stop() {
    this.stopped = true;
    this.controller?.abort();
  }

  /** Cut the current connection as a network drop would; the tail reconnects by itself. */
  drop() {
    this.controller?.abort();
  }

  async run() {
    let failures = 0;
    while (!this.stopped) {
      try {
        await this.follow();
        failures = 0;
      } catch (error) {
        if (error instanceof ApiError && [401, 403, 404].includes(error.status)) {
          this.onState("failed", error.message);
          return;
        }
        failures += 1;
      }
      if (this.stopped) return;
      this.onState("reconnecting");
      await new Promise((resolve) => setTimeout(resolve, RETRY_MS[Math.min(failures, RETRY_MS.length - 1)]));
    }
  }

  async follow() {
    const path = `/v1/nodes/${encodeURIComponent(this.node)}/logs/stream`;
    const url = this.cursor === null ? `${path}?tail=${encodeURIComponent(this.tail)}` : path;
    const headers = await signedHeaders(currentSession(), url); // the query is signed too
    if (this.cursor !== null) headers["Last-Event-ID"] = String(this.cursor);
    this.controller = new AbortController();
    const response = await fetch(url, { headers, cache: "no-store", signal: this.controller.signal });
    if (!response.ok) throw await errorFrom(response);
    this.connections += 1;
    this.onState("live");
    const reader = response.body.pipeThrough(new TextDecoderStream()).getReader();
    let buffer = "";
    for (;;) {
      const { value, done } = await reader.read();
      if (done) return;
      buffer += value.replace(/\r\n?/g, "\n");
      let end;
      while ((end = buffer.indexOf("\n\n")) >= 0) {
        this.dispatch(parseEvent(buffer.slice(0, end)));
        buffer = buffer.slice(end + 2);
      }
    }
  }

  dispatch(event) {
    if (!event.data) return;
    const payload = JSON.parse(event.data);
    if (event.type === "status") {
      this.onStatus(payload);
      return;
    }
    if (event.type !== "message") return;
    if (this.cursor !== null && payload.id <= this.cursor) return; // already shown
    this.cursor = payload.id;
    this.onLine(payload);
  }
}

/** One SSE event block ("field: value" lines) as {type, id, data}. */
export function parseEvent(block) {
  const event = { type: "message", id: null, data: "" };
  const data = [];
  for (const line of block.split("\n")) {
    if (!line || line.startsWith(":")) continue;
    const colon = line.indexOf(":");
    const field = colon < 0 ? line : line.slice(0, colon);
    const value = colon < 0 ? "" : line.slice(colon + 1).replace(/^ /, "");
    if (field === "event") event.type = value;
    else if (field === "id") event.id = value;
    else if (field === "data") data.push(value);
  }
  event.data = data.join("\n");
  return event;
}
