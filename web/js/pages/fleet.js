// Fleet (organizer): the physical cars, online or offline with when they were last seen, Vehicle
// battery level, model, mode (Autonomous driving / Manual driving), armed; rename, LED color, assign
// to a LIVE race; an E-stop per car and E-stop all cars. Live over /ws/fleet (no polling).
import { html, useEffect, useState } from "../lib.js";
import { get, patch, post, api } from "../api.js";
import { useTick } from "../hooks.js";
import { CopyField, ErrorNote, Link, Notice } from "../ui.js";

const MODES = { autonomous: "Autonomous driving", manual: "Manual driving", calibration: "Calibration" };
// The device console's "Edit LED color" choices (guide), as the colours Trackside sends.
const LED_COLORS = [
  ["Red", "#ff0000"], ["Marigold", "#ffa500"], ["Orchid Purple", "#da70d6"], ["Sky Blue", "#00bfff"],
  ["Green", "#00ff00"], ["Violet", "#8a2be2"], ["Lime", "#bfff00"],
];

/** Every car, pushed by the server on each change; reconnects by itself. */
function useFleet() {
  const [fleet, setFleet] = useState({ cars: null, connection: "connecting" });
  useEffect(() => {
    let ws = null;
    let timer = null;
    let retries = 0;
    let closed = false;
    const connect = () => {
      const proto = location.protocol === "https:" ? "wss" : "ws";
      ws = new WebSocket(`${proto}://${location.host}/ws/fleet`);
      ws.onmessage = (frame) => {
        const message = JSON.parse(frame.data);
        if (message.type !== "fleet") return;
        retries = 0;
        setFleet({ cars: message.cars, connection: "live" });
      };
      ws.onclose = (closing) => {
        if (closed) return;
        if (closing.code === 4401 || closing.code === 4403) {
          setFleet((f) => ({ ...f, connection: "forbidden", message: closing.reason }));
          return;
        }
        setFleet((f) => ({ ...f, connection: "reconnecting" }));
        timer = setTimeout(connect, Math.min(5000, 250 * 2 ** retries++));
      };
    };
    connect();
    return () => {
      closed = true;
      clearTimeout(timer);
      if (ws) ws.close(1000, "page closed");
    };
  }, []);
  return fleet;
}

function ago(iso) {
  if (!iso) return "never";
  const s = Math.max(0, Math.round((Date.now() - Date.parse(iso)) / 1000));
  if (s < 60) return `${s} s ago`;
  if (s < 3600) return `${Math.floor(s / 60)} min ago`;
  if (s < 86400) return `${Math.floor(s / 3600)} h ago`;
  return new Date(iso).toLocaleString();
}

function AddCar() {
  const [name, setName] = useState("");
  const [made, setMade] = useState(null);
  const [error, setError] = useState(null);
  const add = async (event) => {
    event.preventDefault();
    try {
      setMade(await post("/api/cars", { name: name.trim() }));
      setError(null);
      setName("");
    } catch (failure) {
      setError(failure);
    }
  };
  return html`<section class="card add-car" aria-label="Add a car">
    <h2>Add a car</h2>
    <form class="actions" onSubmit=${add}>
      <label class="field inline"><span class="label">New car name</span>
        <input value=${name} required maxlength="64" onInput=${(e) => setName(e.currentTarget.value)} /></label>
      <button type="submit" class="primary">Add car</button>
    </form>
    <${ErrorNote} error=${error} />
    ${made && html`<div class="notice" role="status">
      <p><strong>${made.name}</strong> added. Its car token is shown only now: put it on the car.</p>
      <${CopyField} label="Car token" buttonLabel="Copy car token" buttonText="Copy" value=${made.token} />
      <${CopyField} label="Start command" buttonLabel="Copy start command" buttonText="Copy"
        value=${`trackside car --server ${location.origin} --token ${made.token}`} />
    </div>`}
  </section>`;
}

function Facts({ car }) {
  const t = car.telemetry;
  const throttle = t ? (t.throttle === 0 ? "Neutral" : `${Math.round(t.throttle * 100)} %`) : "—";
  const facts = [
    ["Vehicle battery level", t && t.battery_pct !== null && t.battery_pct !== undefined ? `${Math.round(t.battery_pct)} %` : "—"],
    ["Model", (t && t.model) || "No model loaded"],
    ["Mode", t ? MODES[t.mode] || t.mode : "—"],
    ["Armed", t ? (t.armed ? "Armed" : "Disarmed") : "—"],
    ["Throttle", throttle],
    ["Maximum speed", t ? `${Math.round(t.max_speed * 100)} %` : "—"],
    ["Inference", t && t.inference_fps ? `${t.inference_fps.toFixed(1)} fps, ${(t.inference_ms || 0).toFixed(1)} ms` : "—"],
    ["Link", car.online && car.rtt_ms !== null && car.rtt_ms !== undefined ? `${Math.round(car.rtt_ms)} ms round trip` : "—"],
    ["Hardware", car.hardware || "—"],
    ["Software", car.software || "—"],
  ];
  return html`<dl class="car-facts">${facts.map(([k, v]) => html`<div key=${k}><dt>${k}</dt><dd data-fact=${k}>${v}</dd></div>`)}</dl>`;
}

function CarCard({ car, races }) {
  const [name, setName] = useState(car.name);
  const [error, setError] = useState(null);
  const [note, setNote] = useState("");
  useEffect(() => setName(car.name), [car.name]);
  const t = car.telemetry;
  const act = async (fn, done) => {
    try {
      await fn();
      setError(null);
      setNote(done);
    } catch (failure) {
      setError(failure);
      setNote("");
    }
  };
  const estop = () => act(() => post(`/api/fleet/${car.id}/estop`), "E-stop sent: the car is in neutral and disarmed.");
  const clear = () => act(() => post(`/api/fleet/${car.id}/commands`, { type: "clear_estop" }), "E-stop cleared. The car stays disarmed until it is started.");
  const rename = (event) => {
    event.preventDefault();
    act(() => patch(`/api/fleet/${car.id}`, { name: name.trim() }), "Name saved.");
  };
  const colour = (value) => act(() => patch(`/api/fleet/${car.id}`, { tail_light: value }), "LED color set.");
  const assign = (value) => act(() => api("PUT", `/api/fleet/${car.id}/race`, { race_id: value ? Number(value) : null }),
    value ? "Assigned: that race now runs on the physical track." : "Unassigned: that race runs on the simulator.");
  const known = LED_COLORS.some(([, hex]) => hex === car.tail_light);
  const latched = Boolean(t && t.estop);
  return html`<article class=${"car-card card" + (car.online ? " online" : " offline")} aria-label=${car.name}
      data-car-id=${car.id} data-online=${String(car.online)} data-armed=${String(Boolean(t && t.armed))}
      data-estop=${String(latched)} data-throttle=${t ? String(t.throttle) : ""}>
    <header class="car-head">
      <span class="led" title=${`LED color ${car.tail_light}`} style=${{ background: car.tail_light }}></span>
      <h2>${car.name}</h2>
      <span class=${"badge " + (car.online ? "ok" : "off")} role="status">${car.online ? "Online" : "Offline"}</span>
      ${latched && html`<span class="badge danger">E-stop latched</span>`}
      <span class="seen">${car.online ? "Linked now" : `Last seen ${ago(car.last_seen_at)}`}</span>
    </header>
    <div class="actions">
      <button type="button" class="danger estop" aria-label=${`E-stop ${car.name}`} disabled=${!car.online} onClick=${estop}>E-stop</button>
      ${latched && html`<button type="button" onClick=${clear}>Clear e-stop</button>`}
    </div>
    <${Facts} car=${car} />
    <div class="car-settings">
      <form class="actions" onSubmit=${rename}>
        <label class="field inline"><span class="label">Car name</span>
          <input value=${name} maxlength="64" required onInput=${(e) => setName(e.currentTarget.value)} /></label>
        <button type="submit" disabled=${name.trim() === car.name}>Save name</button>
      </form>
      <label class="field inline"><span class="label">LED color</span>
        <select value=${car.tail_light} onChange=${(e) => colour(e.currentTarget.value)}>
          ${!known && html`<option value=${car.tail_light}>Custom (${car.tail_light})</option>`}
          ${LED_COLORS.map(([label, hex]) => html`<option key=${hex} value=${hex}>${label}</option>`)}
        </select></label>
      <label class="field inline"><span class="label">Race</span>
        <select value=${car.race_id ? String(car.race_id) : ""} onChange=${(e) => assign(e.currentTarget.value)}>
          <option value="">Not assigned</option>
          ${races.map((r) => html`<option key=${r.id} value=${String(r.id)}>${r.config.name}</option>`)}
        </select></label>
      ${car.race_id && html`<p class="hint"><${Link} href=${`/races/${car.race_id}/live`}>Go to LIVE race</${Link}>${" · "}<${Link} href=${`/races/${car.race_id}/timekeeper`}>Timekeeper panel</${Link}></p>`}
    </div>
    ${note && html`<p class="notice" role="status">${note}</p>`}
    <${ErrorNote} error=${error} />
  </article>`;
}

export function FleetPage() {
  const fleet = useFleet();
  const [races, setRaces] = useState([]);
  const [stopAll, setStopAll] = useState(null);
  const [error, setError] = useState(null);
  useTick(1000);
  useEffect(() => {
    get("/api/races").then((data) => setRaces(data.races.filter((r) => r.format === "live" && r.status !== "closed")), setError);
  }, []);
  const cars = fleet.cars || [];
  const everyone = async () => {
    try {
      const { results } = await post("/api/fleet/estop");
      const name = (id) => (cars.find((c) => String(c.id) === id) || { name: `car ${id}` }).name;
      const entries = Object.entries(results);
      setStopAll(entries.length
        ? entries.map(([id, answer]) => `${name(id)}: ${answer === "ok" ? "stopped" : answer}`).join("; ")
        : "No car is online.");
      setError(null);
    } catch (failure) {
      setError(failure);
    }
  };
  if (fleet.connection === "forbidden") {
    return html`<div class="page"><p class="error" role="alert">${fleet.message || "The fleet is for race organizers."}</p></div>`;
  }
  const online = cars.filter((c) => c.online).length;
  return html`<div class="page fleet">
    <nav class="crumbs" aria-label="Breadcrumb"><${Link} href="/manage">Manage races</${Link}> › Fleet</nav>
    <h1>Fleet</h1>
    <div class="estop-bar">
      <button type="button" class="danger estop-all" onClick=${everyone}>E-stop all cars</button>
      <span>${fleet.cars === null ? "Loading…" : `${online} of ${cars.length} cars online`}</span>
      ${fleet.connection === "reconnecting" && html`<span class="connection" role="status">Reconnecting to the fleet…</span>`}
    </div>
    ${stopAll && html`<${Notice}>E-stop all cars: ${stopAll}</${Notice}>`}
    <${ErrorNote} error=${error} />
    <p class="hint">A car assigned to a LIVE race races there on the physical track: launching a racer sends the
      car the racer's model, counts down and starts it. E-stop puts a car in neutral and disarms it until Clear e-stop.</p>
    ${fleet.cars !== null && cars.length === 0 && html`<p class="empty">No cars yet: add one below and start${" "}<code>trackside car</code> on it with its token (see docs/cars.md).</p>`}
    <div class="cars">${cars.map((car) => html`<${CarCard} key=${car.id} car=${car} races=${races} />`)}</div>
    <${AddCar} />
  </div>`;
}
