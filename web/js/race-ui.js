// Race pieces shared by the racer, organizer and broadcast pages.
import { html } from "./lib.js";
import { FORMATS, RACE_TYPES, dateTime, gap, lapTime, rules, timeOfDay } from "./format.js";
import { comingUp } from "./race-state.js";
import { CheckeredFlag } from "./icons.js";

export function Leaderboard({ rows, name, title = "Leaderboard", raceId, myId, canSeeAllLogs = false, compact = false }) {
  return html`<section class="leaderboard" aria-label=${title}>
    <h2>${title}</h2>
    ${rows.length === 0
      ? html`<p class="empty">No entries. Results appear here as soon as racers post a lap.</p>`
      : html`<table>
          <thead><tr><th>Rank</th><th>Racer</th><th>Time</th><th>Gap to 1st</th>
            ${!compact && html`<th>Off-track</th><th>Collision</th><th>Evaluation logs</th>`}</tr></thead>
          <tbody>${rows.map((r) => html`<tr key=${r.racer_id} class=${r.racer_id === myId ? "me" : ""}>
            <td>${r.rank}</td><td>${r.racer_name || name(r.racer_id)}</td><td class="time">${lapTime(r.time_ms)}</td>
            <td class="time">${r.rank === 1 ? "—" : gap(r.gap_ms)}</td>
            ${!compact && html`<td>${r.off_track}</td><td>${r.collisions}</td>
              <td>${(canSeeAllLogs || r.racer_id === myId) && raceId
                ? html`<a href=${`/api/races/${raceId}/runs/${r.run_id}/simtrace.csv`} download>Download evaluation logs</a>`
                : "—"}</td>`}
          </tr>`)}</tbody>
        </table>`}
  </section>`;
}

export function ComingUp({ state, name, myId, children }) {
  const rows = comingUp(state);
  return html`<section class="coming-up" aria-label="Coming up">
    <h2>COMING UP</h2>
    ${children}
    ${state.winner
      ? html`<p class="empty">The race is over.</p>`
      : rows.length === 0
      ? html`<p class="empty">${state.entriesOpen ? "The queue is built when the organizer closes model entries." : "Nobody is waiting."}</p>`
      : html`<ol>${rows.map(({ entry, etaS }, i) => html`<li key=${entry.racer_id} class=${entry.racer_id === myId ? "me" : ""}>
          <span class="who">${name(entry.racer_id)}</span>
          <span class="when">${i === 0 && !state.run ? "Up next" : timeOfDay(new Date(Date.now() + etaS * 1000))}</span>
        </li>`)}</ol>`}
  </section>`;
}

export function Countdown({ state, name }) {
  const run = state.run;
  if (!run) return null;
  if (run.phase === "countdown") {
    const value = Math.max(1, Math.ceil((run.goAt - Date.now()) / 1000));
    return html`<div class="countdown" role="timer" aria-live="assertive" aria-label="Countdown">
      <span class="who">${name(run.racer_id)}</span><span class="number">${value}</span></div>`;
  }
  if (run.phase === "running" && Date.now() - run.goAt < 1500) {
    return html`<div class="countdown go" role="status"><span class="number">Go!</span></div>`;
  }
  if (run.phase === "replay") {
    return html`<div class="checkered" role="status"><span class="flag"><${CheckeredFlag} /></span>
      <span>Checkered flag: ${name(run.racer_id)}'s run is over. Replay…</span></div>`;
  }
  return null;
}

/** The statistics the guide's video overlay shows, drawn over the video from telemetry. */
export function Hud({ state, name }) {
  const t = state.telemetry;
  const run = state.run;
  if (!run || !t || t.run_id !== run.run_id) return null;
  const sectors = t.sector_colours || [];
  return html`<div class="hud" aria-label="Race overlay">
    <div class="hud-name">${name(t.racer_id)}</div>
    <dl>
      <div><dt>Lap</dt><dd>${t.lap}</dd></div>
      <div><dt>Lap time</dt><dd class="time">${lapTime(t.lap_time_ms)}</dd></div>
      <div><dt>Best lap</dt><dd class="time">${lapTime(t.best_lap_ms)}</dd></div>
      <div><dt>Time remaining</dt><dd class="time">${lapTime(t.time_remaining_ms)}</dd></div>
      <div><dt>Speed</dt><dd>${t.speed.toFixed(2)} m/s</dd></div>
      <div><dt>Resets</dt><dd>${t.resets}</dd></div>
    </dl>
    <ol class="sectors" aria-label="Sectors">${[0, 1, 2].map((i) => html`<li class=${"sector " + (sectors[i] || "none")}
      title=${sectors[i] ? { purple: "Session best", green: "Personal best", yellow: "Slowest sector" }[sectors[i]] : "Not yet driven"}>S${i + 1}</li>`)}</ol>
  </div>`;
}

export function RaceDetails({ race, tracks }) {
  const c = race.config;
  const track = tracks && tracks.find((t) => t.track_id === c.track_id);
  return html`<section class="race-details" aria-label="Race details">
    <h2>Race details</h2>
    <div class="details-grid">
      <dl>
        <div><dt>Race hosting</dt><dd>${FORMATS[race.format]}</dd></div>
        <div><dt>Race type</dt><dd>${RACE_TYPES[c.race_type]}</dd></div>
        ${race.format === "live"
          ? html`<div><dt>LIVE race date</dt><dd>Start on ${dateTime(c.start, c.time_zone)}</dd></div>`
          : html`<div><dt>Race dates</dt><dd>Start ${dateTime(c.start, c.time_zone)}<br />End ${dateTime(c.end, c.time_zone)}</dd></div>`}
        <div><dt>Time zone</dt><dd>${c.time_zone}</dd></div>
      </dl>
      <div class="track">
        <h3>Competition track</h3>
        <p><strong>${track ? track.name : c.track_id}</strong>${c.direction === "CLOCKWISE" ? " (clockwise)" : ""}</p>
        ${track && html`<p>${track.description}</p>${!/Length/.test(track.description) && html`<p>Length: ${track.length_m} m · Width: ${Math.round(track.width_m * 100)} cm</p>`}`}
      </div>
      <div class="rules">
        <h3>Rules</h3>
        <dl>${rules(c).map(([k, v]) => html`<div><dt>${k}</dt><dd>${v}</dd></div>`)}</dl>
      </div>
    </div>
    ${c.description && html`<p class="description">${linkify(c.description)}</p>`}
  </section>`;
}

function linkify(text) {
  const parts = text.split(/(https?:\/\/[^\s<>"']+)/g);
  return parts.map((part, i) => (i % 2 ? html`<a href=${part} target="_blank" rel="noopener noreferrer">${part}</a>` : part));
}

export function ConnectionBanner({ connection }) {
  const s = connection.state;
  if (s === "live" || s === "connecting") return null;
  return html`<p class=${"connection " + s} role="status">${connection.message || (s === "reconnecting" ? "Reconnecting…" : s)}</p>`;
}
