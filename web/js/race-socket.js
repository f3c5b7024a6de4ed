// The race websocket client: subscribe, commands with replies, and reconnection that resumes the
// event stream from the last stored event id (``last_event_id``), so nothing is missed or doubled.
// Message types are race_server/protocol.py's; tests/web/test_protocol_names.py checks these lists.

export const CLIENT_MESSAGE_TYPES = [
  "ping", "subscribe", "speed_control", "launch_simulator", "reset_simulator", "set_entries_open",
  "begin_queue_edit", "save_queue", "cancel_queue_edit", "launch_racer", "relaunch_racer",
  "clear_leaderboard", "declare_winner",
];

export const SERVER_MESSAGE_TYPES = [
  "ok", "error", "snapshot", "simulator", "entries", "queue", "queue_edit", "run_launched", "countdown",
  "run_started", "checkered", "run_failed", "replay_ended", "up_next", "leaderboard_cleared",
  "winner_declared", "sector", "lap", "penalty", "attempt_ended", "telemetry", "leaderboard", "speed",
];

// Close codes after which reconnecting cannot help (race_server.auth / race_ws).
const FINAL_CLOSE = { 4401: "signed_out", 4403: "forbidden", 4404: "not_found" };

export class CommandError extends Error {
  constructor(code, message) {
    super(message);
    this.code = code;
  }
}

export class RaceSocket {
  constructor(raceId, { viewer = null, onEvent = () => {}, onStatus = () => {} } = {}) {
    this.raceId = Number(raceId);
    this.viewer = viewer;
    this.onEvent = onEvent;
    this.onStatus = onStatus;
    this.lastEventId = null;
    this.pending = new Map();
    this.nextReq = 1;
    this.retries = 0;
    this.closed = false;
    this.ws = null;
  }

  url() {
    const proto = location.protocol === "https:" ? "wss" : "ws";
    const query = this.viewer ? `?viewer=${encodeURIComponent(this.viewer)}` : "";
    return `${proto}://${location.host}/ws/races/${this.raceId}${query}`;
  }

  connect() {
    this.closed = false;
    this.onStatus({ state: this.lastEventId === null ? "connecting" : "reconnecting" });
    const ws = new WebSocket(this.url());
    this.ws = ws;
    ws.onopen = () => {
      this.retries = 0;
      const resume = this.lastEventId === null ? {} : { last_event_id: this.lastEventId };
      this.command("subscribe", resume).then(
        () => this.onStatus({ state: "live" }),
        // A refused socket closes right away: its close code, not this rejection, says why.
        (error) => error.code !== "disconnected" && this.onStatus({ state: "error", message: error.message }),
      );
    };
    ws.onmessage = (frame) => this.receive(JSON.parse(frame.data));
    ws.onclose = (closing) => {
      for (const { reject } of this.pending.values()) reject(new CommandError("disconnected", "The connection to the race was lost."));
      this.pending.clear();
      if (this.closed || this.ws !== ws) return;
      const final = FINAL_CLOSE[closing.code];
      if (final) {
        this.onStatus({ state: final, message: closing.reason || "You have no access to this race." });
        return;
      }
      // Back off gently; a restarting server is usually back within seconds.
      const delay = Math.min(5000, 250 * 2 ** this.retries);
      this.retries += 1;
      this.onStatus({ state: "reconnecting", message: closing.reason || "Connection lost; reconnecting…" });
      this.timer = setTimeout(() => this.connect(), delay);
    };
  }

  receive(message) {
    if ((message.type === "ok" || message.type === "error") && this.pending.has(message.req)) {
      const { resolve, reject } = this.pending.get(message.req);
      this.pending.delete(message.req);
      if (message.type === "ok") resolve(message);
      else reject(new CommandError(message.code, message.message));
      return;
    }
    if (message.type === "snapshot" && Number.isInteger(message.last_event_id)) {
      this.lastEventId = message.last_event_id;
    } else if (Number.isInteger(message.event_id)) {
      this.lastEventId = Math.max(this.lastEventId ?? 0, message.event_id);
    }
    this.onEvent(message);
  }

  command(type, fields = {}) {
    const req = this.nextReq++;
    const message = { v: 1, type, req, ...(type === "ping" ? {} : { race_id: this.raceId }), ...fields };
    return new Promise((resolve, reject) => {
      if (!this.ws || this.ws.readyState !== WebSocket.OPEN) {
        reject(new CommandError("disconnected", "Not connected to the race; reconnecting…"));
        return;
      }
      this.pending.set(req, { resolve, reject });
      this.ws.send(JSON.stringify(message));
    });
  }

  close() {
    this.closed = true;
    clearTimeout(this.timer);
    if (this.ws) this.ws.close(1000, "page closed");
  }
}
