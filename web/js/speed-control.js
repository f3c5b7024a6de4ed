// The racer's speed control (guide "Participate in a LIVE race", step 9): a slider by mouse, < and >
// buttons, arrow keys on the focused slider, reset to 1. Live only from Go to the checkered flag of
// your own run; shows the multiplier the server confirmed, not only the one sent.
import { html, useEffect, useRef, useState } from "./lib.js";

const MIN = 0.5;
const MAX = 2.0;
const STEP = 0.05;
const snap = (v) => Math.round(Math.min(MAX, Math.max(MIN, v)) / STEP) * STEP;
const show = (v) => `×${Number(v).toFixed(2)}`;

export function SpeedControl({ state, socketRef, myId }) {
  const run = state.run;
  const live = Boolean(run && run.phase === "running" && run.racer_id === myId);
  const confirmed = state.confirmedSpeed[myId] ?? 1;
  const [wanted, setWanted] = useState(1);
  const [error, setError] = useState("");
  const inFlight = useRef(false);
  const latest = useRef(null);

  useEffect(() => {
    if (!live) setWanted(1);
  }, [live, run && run.run_id]);

  // One command at a time; while it is out, only the latest wanted value is kept.
  async function send(value) {
    latest.current = value;
    if (inFlight.current) return;
    inFlight.current = true;
    while (latest.current !== null) {
      const next = latest.current;
      latest.current = null;
      try {
        await socketRef.current.command("speed_control", { multiplier: Number(next.toFixed(2)) });
        setError("");
      } catch (failure) {
        setError(failure.message);
      }
    }
    inFlight.current = false;
  }
  const set = (value) => {
    const v = Number(snap(value).toFixed(2));
    setWanted(v);
    if (live) send(v);
  };

  return html`<section class=${"speed-control" + (live ? " live" : "")} aria-label="Speed control">
    <h2>Speed control</h2>
    <p class="hint">${live
      ? "Your run is on: boost or slow your model's speed. The model still steers. 1 returns to the model's own speeds."
      : "Speed control opens on Go! of your own run and closes at the checkered flag."}</p>
    <div class="slider-row">
      <button type="button" aria-label="Slower" disabled=${!live || wanted <= MIN} onClick=${() => set(wanted - STEP)}>‹</button>
      <input type="range" min=${MIN} max=${MAX} step=${STEP} value=${wanted} disabled=${!live}
        aria-label="Speed multiplier" aria-valuetext=${show(wanted)}
        onInput=${(e) => set(Number(e.currentTarget.value))} />
      <button type="button" aria-label="Faster" disabled=${!live || wanted >= MAX} onClick=${() => set(wanted + STEP)}>›</button>
    </div>
    <div class="speed-readout">
      <span>Sent <output aria-label="Sent multiplier">${show(wanted)}</output></span>
      <span>Confirmed <output aria-label="Confirmed multiplier" data-value=${confirmed}>${show(confirmed)}</output></span>
      <button type="button" disabled=${!live || wanted === 1} onClick=${() => set(1)}>Reset to 1</button>
    </div>
    ${error && html`<p class="error" role="alert">${error}</p>`}
  </section>`;
}
