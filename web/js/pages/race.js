// The race page (details, rules and track, leaderboard, your racer panel, Calendar for LIVE races)
// and Enter race (choose one of your models).
import { html, useState } from "../lib.js";
import { post } from "../api.js";
import { session } from "../session.js";
import { ErrorNote, Link, navigate } from "../ui.js";
import { useFetch } from "../hooks.js";
import { Leaderboard, RaceDetails } from "../race-ui.js";
import { FORMATS, STATUS, gap } from "../format.js";

const SUBMISSION_STATUS = { entered: "Entered", queued: "Evaluating", failed: "Failed", done: "Evaluated" };

function RacerPanel({ race, board, subs }) {
  const me = session();
  const mine = board.find((r) => r.racer_id === me.user_id);
  const open = race.status === "open";
  return html`<aside class="racer-panel card" aria-label="Your racer panel">
    <h2>${me.alias || me.email}</h2>
    <p>Your rank <strong>${mine ? `${mine.rank} / ${board.length}` : "-- / --"}</strong>
      ${mine && mine.rank > 1 && html` · Gap to fastest <strong>${gap(mine.gap_ms)}</strong>`}</p>
    ${subs.length > 0
      ? html`<h3>Your submissions</h3><ul class="subs">${subs.map((s) => html`<li key=${s.id} class=${s.loadable ? "" : "red"}>
          ${s.model_id ? `Model ${s.model_id}` : "House car"} · ${SUBMISSION_STATUS[s.status] || s.status}${s.error ? ` — ${s.error}` : ""}</li>`)}</ul>
        ${race.format === "live" && html`<p class="hint">Only your last submission before model entries close will race.</p>`}`
      : html`<p>Start your engines: enter a model to race.</p>`}
    <div class="actions">
      ${open && html`<${Link} class="button primary" href=${`/races/${race.id}/enter`}>${subs.length ? "Race again" : "Enter race"}</${Link}>`}
    </div>
  </aside>`;
}

export function RacePage({ raceId }) {
  const me = session();
  const race = useFetch(`/api/races/${raceId}`);
  const board = useFetch(`/api/races/${raceId}/leaderboard`);
  const tracks = useFetch("/api/tracks");
  const isRacer = me && me.role === "racer";
  const subs = useFetch(`/api/races/${raceId}/submissions`);
  if (race.error) return html`<div class="page"><${ErrorNote} error=${race.error} /></div>`;
  if (!race.data) return html`<p class="loading">Loading race…</p>`;
  const r = race.data;
  const rows = (board.data && board.data.rows) || [];
  const organizer = r.role === "organizer";
  return html`<div class="page race-page">
    <nav class="crumbs" aria-label="Breadcrumb"><${Link} href="/races">Community races</${Link}> › ${r.config.name}</nav>
    ${new URLSearchParams(location.search).get("entered") && html`<p class="notice" role="status">Submission successful!
      ${r.format === "live" ? " Only your last submission before model entries close will race." : " Your model is being evaluated; watch the leaderboard."}</p>`}
    <header class="race-head">
      <h1>${r.config.name}</h1>
      <p>${FORMATS[r.format]} · ${STATUS[r.status]}</p>
      <div class="actions">
        ${isRacer && r.status === "open" && html`<${Link} class="button primary" href=${`/races/${raceId}/enter`}>${
          subs.data && subs.data.submissions.length ? "Race again" : "Enter race"}</${Link}>`}
        ${r.format === "live" && r.status !== "closed" && html`<${Link} class="button primary" href=${`/races/${raceId}/live`}>${organizer ? "Join now" : "Go to LIVE race"}</${Link}>`}
        ${r.format === "live" && html`<a class="button" href=${`/api/races/${raceId}/calendar.ics`} download=${`race-${raceId}.ics`}>Calendar</a>`}
        ${organizer && html`<${Link} class="button" href=${`/manage?race=${raceId}`}>Manage race</${Link}>`}
      </div>
    </header>
    <div class="race-layout">
      <div>
        <${RaceDetails} race=${r} tracks=${tracks.data && tracks.data.tracks} />
        ${r.format === "live" && r.status !== "closed" && html`<p class="notice">LIVE race starts ${new Date(r.config.start).toLocaleString()}.
          Leaderboard results are posted here as soon as the race starts.</p>`}
      </div>
      ${isRacer && subs.data && html`<${RacerPanel} race=${r} board=${rows} subs=${subs.data.submissions} />`}
    </div>
    <${Leaderboard} rows=${rows} name=${(id) => `racer ${id}`} title=${`${r.config.name} leaderboard`} raceId=${raceId}
      myId=${me && me.user_id} canSeeAllLogs=${organizer} />
  </div>`;
}

export function EnterRace({ raceId }) {
  const race = useFetch(`/api/races/${raceId}`);
  const models = useFetch("/api/models");
  const [choice, setChoice] = useState("");
  const [error, setError] = useState(null);
  const [busy, setBusy] = useState(false);
  if (race.error) return html`<div class="page"><${ErrorNote} error=${race.error} /></div>`;
  if (!race.data) return html`<p class="loading">Loading…</p>`;
  const ready = ((models.data && models.data.models) || []).filter((m) => m.status === "ready");
  const submit = async (event) => {
    event.preventDefault();
    setBusy(true);
    try {
      const body = choice === "house" ? { driver: "reference", reference_speed: 1.5 } : { model_id: Number(choice) };
      await post(`/api/races/${raceId}/submissions`, body);
      navigate(`/races/${raceId}?entered=1`);
    } catch (failure) {
      setError(failure);
    } finally {
      setBusy(false);
    }
  };
  const r = race.data;
  return html`<form class="page enter-race" onSubmit=${submit}>
    <nav class="crumbs" aria-label="Breadcrumb"><${Link} href="/races">Community races</${Link}> ›
      <${Link} href=${`/races/${raceId}`}>${r.config.name}</${Link}> › Enter race</nav>
    <h1>Enter race</h1>
    <h2>${r.config.name}</h2>
    <section class="card">
      <h3>Choose model</h3>
      <p>Submit your model to participate in the race. Your time and rank will be displayed on the race leaderboard alongside other competitors.
        ${r.format === "live" && " You can enter several models; only the last one you submit before entries close will race."}</p>
      <label class="field"><span class="label">Model</span>
        <select required value=${choice} onChange=${(e) => setChoice(e.currentTarget.value)}>
          <option value="" disabled>Choose a model</option>
          ${ready.map((m) => html`<option value=${m.id}>${m.name || `Model ${m.id}`}</option>`)}
          <option value="house">House car (Trackside's reference driver)</option>
        </select></label>
      ${models.data && ready.length === 0 && html`<p class="hint">You have no trained model ready yet. The house car lets you try the race.</p>`}
      <${ErrorNote} error=${error} />
      <div class="actions">
        <${Link} class="button" href=${`/races/${raceId}`}>Cancel</${Link}>
        <button class="primary" type="submit" disabled=${busy || !choice}>Enter race</button>
      </div>
    </section>
  </form>`;
}
