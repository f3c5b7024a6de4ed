// Race organizer control panel (guide "Run a LIVE race"): simulator launch with Ready / Set / Go!,
// Model entries open, the racer queue editor, launch / relaunch with the 2-minute and 30-second
// warnings, Reset simulator, Clear leaderboard ranking, Declare winner!, View broadcast mode.
import { html, useEffect, useState } from "../lib.js";
import { post } from "../api.js";
import { ConfirmButton, CopyField, ErrorNote, Link } from "../ui.js";
import { QueueEditor } from "../queue-editor.js";
import { clock } from "../format.js";
import { remainingS } from "../race-state.js";
import { useAssignedCar } from "../hooks.js";

const STAGES = [["ready", "Ready", "20-25 minutes on the DeepRacer console; seconds here"], ["set", "Set", ""], ["go", "Go!", "Instant"]];
const SIM_LABEL = { not_created: "Not created", launching: "Launching", running: "Running", failed: "Failed" };

function Simulator({ state, command }) {
  const sim = state.simulator;
  const reached = sim.status === "running" ? 3 : sim.stage ? STAGES.findIndex(([s]) => s === sim.stage) + 1 : 0;
  return html`<section class="panel-section" aria-label="Race simulator">
    <h3>Race simulator</h3>
    <p>Status: <strong data-simulator=${sim.status}>${SIM_LABEL[sim.status]}</strong>${sim.reason ? ` — ${sim.reason}` : ""}</p>
    <ol class="stages" aria-label="Launch LIVE racing simulator">
      ${STAGES.map(([key, label], i) => html`<li key=${key} class=${i < reached ? "done" : sim.status === "launching" && i === reached ? "now" : ""}>${label}</li>`)}
    </ol>
    <div class="actions">
      <button type="button" class="primary" disabled=${sim.status === "launching" || sim.status === "running"}
        onClick=${() => command("launch_simulator")}>Launch simulator</button>
      <${ConfirmButton} label="Reset simulator" confirmLabel="Reset simulator now" disabled=${sim.status === "not_created"}
        question="Restart the simulator? A run in progress stops and that racer can be relaunched." onConfirm=${() => command("reset_simulator")} />
    </div>
  </section>`;
}

function Warnings({ state, name }) {
  const run = state.run;
  if (!run || run.phase !== "running") return null;
  const left = remainingS(run);
  const next = state.queue.entries.slice(0, 2).map((e) => name(e.racer_id));
  let warning = null;
  if (left <= 30) {
    warning = next.length
      ? html`<strong>30-second warning:</strong> tell ${next[0]} they race next.`
      : html`<strong>30 seconds left</strong> — nobody else is in the queue.`;
  } else if (left <= 120) {
    warning = next.length
      ? html`<strong>2-minute warning:</strong> contact ${next.join(" and ")} and confirm they are ready to race.`
      : html`<strong>2 minutes left</strong> — nobody else is in the queue.`;
  }
  return html`<div class=${"run-status" + (warning ? " warn" : "")} role="status" aria-live="polite">
    <p>${name(run.racer_id)} is racing: <strong>${clock(left)}</strong> left.</p>
    ${warning && html`<p class="warning">${warning}</p>`}
  </div>`;
}

function Broadcast({ raceId }) {
  const key = `trackside.viewer.${raceId}`;
  const [token, setToken] = useState(localStorage.getItem(key));
  const [error, setError] = useState(null);
  const newToken = async () => {
    const made = await post(`/api/races/${raceId}/viewer-token`);
    localStorage.setItem(key, made.token);
    setToken(made.token);
    return made.token;
  };
  const base = `${location.origin}/broadcast/${raceId}?viewer=`;
  const open = async () => {
    // The window opens before the token request so popup blockers allow it.
    const win = window.open("about:blank", "_blank");
    try {
      const t = token || (await newToken());
      if (win) win.location = `${base}${encodeURIComponent(t)}&scene=race`;
    } catch (failure) {
      if (win) win.close();
      setError(failure);
    }
  };
  return html`<section class="panel-section" aria-label="Broadcast">
    <h3>Broadcast</h3>
    <p class="hint">Broadcast mode is a 1920×1080 page for OBS (browser source): transparent, no cursor, no sign-in needed.</p>
    <div class="actions">
      <button type="button" onClick=${open}>View broadcast mode</button>
      <${ConfirmButton} label=${token ? "New broadcast link" : "Create broadcast link"} confirmLabel="Create link"
        question=${token ? "The old broadcast link stops working. Continue?" : "Create a broadcast link?"}
        onConfirm=${() => newToken().catch(setError)} />
    </div>
    ${token && html`<div class="scene-links">
      ${[["race", "Race view"], ["race-1up", "Race view + 1 commentator"], ["race-2up", "Race view + 2 commentators"],
         ["leaderboard", "Leaderboard"], ["intro", "Intro / title"]].map(([scene, label]) => html`<div class="scene-link" key=${scene}>
          <span class="scene-name">${label}</span>
          <${CopyField} label=${`${label} scene URL`} buttonLabel=${`Copy ${label} URL`} buttonText="Copy"
            value=${`${base}${encodeURIComponent(token)}&scene=${scene}`} />
        </div>`)}
      <p class="hint">Add <code>&chroma=1</code> for a green key colour instead of transparency.</p>
    </div>`}
    <${ErrorNote} error=${error} />
  </section>`;
}

// Which car (if any) the Fleet assigned to this race: then it runs on the physical track.
function PhysicalTrack({ raceId }) {
  const car = useAssignedCar(raceId);
  if (car === undefined) return null;
  return html`<section class="panel-section" aria-label="Physical track">
    <h3>Physical track</h3>
    ${car
      ? html`<p>This race runs on the physical track with <strong>${car.name}</strong> (${car.online ? "online" : "offline"}).</p>
          <div class="actions"><${Link} class="button primary" href=${`/races/${raceId}/timekeeper`}>Timekeeper panel</${Link}>
            <${Link} class="button" href="/fleet">Fleet</${Link}></div>`
      : html`<p class="hint">This race runs on the simulator. To race a physical car, assign it to this race in the${" "}<${Link} href="/fleet">Fleet</${Link}> before Launch simulator.</p>`}
  </section>`;
}

export function ControlPanel({ state, socketRef, name, raceId }) {
  const [error, setError] = useState(null);
  const command = async (type, fields = {}) => {
    try {
      await socketRef.current.command(type, fields);
      setError(null);
      return true;
    } catch (failure) {
      setError(failure);
      return false;
    }
  };
  // The switch shows the organizer's choice at once and settles on the server's answer.
  const [pendingOpen, setPendingOpen] = useState(null);
  const setEntries = async (open) => {
    setPendingOpen(open);
    if (!(await command("set_entries_open", { open }))) setPendingOpen(null);
  };
  useEffect(() => setPendingOpen(null), [state.entriesOpen]);
  const running = Boolean(state.run && state.run.phase !== "replay");
  return html`<section class="control-panel card" aria-label="Race organizer control panel">
    <h2>Race organizer control panel</h2>
    <${ErrorNote} error=${error} />
    <${Simulator} state=${state} command=${command} />
    <${PhysicalTrack} raceId=${raceId} />
    <section class="panel-section" aria-label="Coming up">
      <h3>COMING UP</h3>
      <label class="switch">
        <input type="checkbox" role="switch" checked=${pendingOpen ?? state.entriesOpen} disabled=${Boolean(state.winner) || running}
          onChange=${(e) => setEntries(e.currentTarget.checked)} />
        <span>Model entries open</span>
      </label>
      <p class="hint">${state.entriesOpen
        ? "Racers can submit models. Turn this off to close submissions and build the racer queue; racers launch only once entries are closed."
        : "Submissions are closed. Red rows are models that could not be loaded."}</p>
      <${Warnings} state=${state} name=${name} />
      ${state.run && state.run.phase === "countdown" && html`<p role="status">Countdown for ${name(state.run.racer_id)}…</p>`}
      ${state.lastFailure && html`<p class="error" role="alert">${name(state.lastFailure.racer_id)}'s run failed (${state.lastFailure.reason}): use Relaunch.</p>`}
      <${QueueEditor} state=${state} socketRef=${socketRef} name=${name} onError=${setError} />
    </section>
    <section class="panel-section" aria-label="Race end">
      <h3>Leaderboard and winner</h3>
      ${state.winner
        ? html`<p role="status" class="winner">Winner declared: <strong>${name(state.winner)}</strong></p>`
        : html`<div class="actions">
            <${ConfirmButton} label="Clear leaderboard ranking" confirmLabel="Clear all entries" disabled=${running}
              question="Clear every leaderboard entry?" onConfirm=${() => command("clear_leaderboard")} />
            <${ConfirmButton} label="Declare winner!" confirmLabel="Declare winner" className="primary" disabled=${running}
              question="End the race and declare the leader the winner?" onConfirm=${() => command("declare_winner")} />
          </div>`}
    </section>
    <${Broadcast} raceId=${raceId} />
  </section>`;
}
