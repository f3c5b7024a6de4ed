// Timekeeper panel (the race's organizer, a LIVE race on the physical track): Lap, Off-track +1 / −1,
// Undo last lap, Pause / Resume, DNF, for timing by hand at the finish line. The run's state comes
// from the timekeeper API after every button and whenever the race feed says the run changed; laps
// land on the same LEADERBOARD as the simulator's.
import { html, useEffect, useState } from "../lib.js";
import { get, post } from "../api.js";
import { useRace, useRacers, namer, useTick } from "../hooks.js";
import { ConnectionBanner, Leaderboard } from "../race-ui.js";
import { ConfirmButton, ErrorNote, Link } from "../ui.js";
import { clock, lapTime } from "../format.js";

function useTiming(raceId, state) {
  const [timing, setTiming] = useState(null);
  const [problem, setProblem] = useState(null);
  const run = state.run;
  const refresh = () =>
    get(`/api/races/${raceId}/timekeeper`).then(
      (data) => { setTiming(data); setProblem(null); },
      (failure) => { setTiming(null); setProblem(failure); },
    );
  useEffect(() => { refresh(); }, [raceId, run && run.run_id, run && run.phase, state.lastFailure, state.simulator.status]);
  return [timing, setTiming, problem, refresh];
}

export function TimekeeperPage({ raceId }) {
  const [state] = useRace(raceId);
  const racers = useRacers(raceId, null, state.queue.version);
  const name = namer(racers, state.leaderboard);
  const [timing, setTiming, problem] = useTiming(raceId, state);
  const [error, setError] = useState(null);
  const [log, setLog] = useState([]);
  useTick(250);
  const base = `/api/races/${raceId}/timekeeper`;
  const press = async (path, body, say) => {
    try {
      const next = await post(`${base}/${path}`, body);
      setTiming(next);
      setError(null);
      setLog((l) => [`${new Date().toLocaleTimeString()} ${say(next)}`, ...l].slice(0, 8));
    } catch (failure) {
      setError(failure);
    }
  };
  const race = state.race;
  const t = state.telemetry && timing && state.telemetry.run_id === timing.run_id ? state.telemetry : null;
  const live = timing && timing.on_track;
  const laps = t ? t.laps : timing ? timing.laps : 0;
  const offTrack = t ? t.off_track : timing ? timing.off_track : 0;
  const left = !live ? null : t && !timing.paused ? t.time_remaining_ms : timing.time_remaining_ms;
  const lastLap = t ? t.last_lap_ms : timing && timing.last_lap_ms;
  const bestLap = t ? t.best_lap_ms : timing && timing.best_lap_ms;
  const notPhysical = problem && problem.code === "not_physical";
  return html`<div class="page timekeeper">
    <nav class="crumbs" aria-label="Breadcrumb"><${Link} href="/races">Community races</${Link}>${" › "}
      ${race ? html`<${Link} href=${`/races/${raceId}/live`}>LIVE: ${race.config.name}</${Link}>` : "…"}${" › "}Timekeeper panel</nav>
    <h1>Timekeeper panel${race ? `: ${race.config.name}` : ""}</h1>
    <${ConnectionBanner} connection=${state.connection} />
    ${notPhysical
      ? html`<p class="notice" role="status">This race is not running on the physical track. Assign a car to it in the${" "}<${Link} href="/fleet">Fleet</${Link}>, then Launch simulator on the <${Link} href=${`/races/${raceId}/live`}>LIVE page</${Link}>.</p>`
      : html`<${ErrorNote} error=${problem} />`}
    <div class="timekeeper-layout">
      <section class="card timing" aria-label="Timing">
        <p class="on-track" role="status">${live
          ? html`<strong>${name(timing.racer_id)}</strong> is on track${timing.paused ? html` — <strong class="warning">Paused</strong>` : ""}`
          : state.run && state.run.phase === "countdown" ? `Countdown for ${name(state.run.racer_id)}…`
          : timing && timing.racer_id ? `No run on track. Last run: ${name(timing.racer_id)}, ${timing.laps} lap${timing.laps === 1 ? "" : "s"}.`
          : "No run on track."}</p>
        <dl class="timing-facts">
          <div><dt>Laps</dt><dd data-fact="laps">${laps}</dd></div>
          <div><dt>Off-track</dt><dd data-fact="off-track">${offTrack}</dd></div>
          <div><dt>Time left</dt><dd class="time">${left === null ? "—" : clock(left / 1000)}</dd></div>
          <div><dt>Current lap</dt><dd class="time">${live ? lapTime(t ? t.lap_time_ms : timing.lap_time_ms) : "—"}</dd></div>
          <div><dt>Last lap</dt><dd class="time">${lastLap ? lapTime(lastLap) : "—"}</dd></div>
          <div><dt>Best lap</dt><dd class="time">${bestLap ? lapTime(bestLap) : "—"}</dd></div>
        </dl>
        <div class="timekeeper-buttons">
          <button type="button" class="primary lap-button" disabled=${!live || timing.paused}
            onClick=${() => press("lap", {}, (n) => `Lap ${n.laps} counted`)}>Lap</button>
          <div class="actions">
            <button type="button" disabled=${!live} aria-label="Off-track +1"
              onClick=${() => press("off-track", { delta: 1 }, (n) => `Off-track: ${n.off_track}`)}>Off-track +1</button>
            <button type="button" disabled=${!live || offTrack === 0} aria-label="Off-track −1"
              onClick=${() => press("off-track", { delta: -1 }, (n) => `Off-track taken back: ${n.off_track}`)}>Off-track −1</button>
            <button type="button" disabled=${!live || laps === 0}
              onClick=${() => press("undo-lap", {}, (n) => `Lap ${n.undone.lap} taken back`)}>Undo last lap</button>
            <button type="button" disabled=${!live} aria-pressed=${String(Boolean(timing && timing.paused))}
              onClick=${() => press("pause", { paused: !timing.paused }, (n) => (n.paused ? "Paused: car stopped, clock stopped" : "Resumed"))}>
              ${timing && timing.paused ? "Resume" : "Pause"}</button>
            <${ConfirmButton} label="DNF" confirmLabel="DNF: end the run" className="danger" disabled=${!live}
              question="The lap in progress does not count and the run ends (did not finish)."
              onConfirm=${() => press("dnf", {}, () => "DNF: run ended")} />
          </div>
        </div>
        <${ErrorNote} error=${error} />
        ${log.length > 0 && html`<ol class="timekeeper-log" aria-label="Timekeeper log">${log.map((line, i) => html`<li key=${i}>${line}</li>`)}</ol>`}
      </section>
      <${Leaderboard} rows=${state.leaderboard} name=${name} title="LEADERBOARD" compact=${true} />
    </div>
  </div>`;
}
