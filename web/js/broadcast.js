// Broadcast mode for OBS (guide "Broadcast a LIVE race"): a fixed 1920×1080 page, transparent (or a
// key colour with ?chroma=1), no cursor or scrollbars, no sign-in (?viewer=TOKEN). Scenes by URL:
// ?scene=race | race-1up | race-2up | leaderboard | intro. Reconnects by itself and resumes the event
// stream from its last event id; the video retries on its own too.
import { html, render } from "./lib.js";
import { useRace, useRacers, namer, useTick } from "./hooks.js";
import { ComingUp, Countdown, Hud, Leaderboard } from "./race-ui.js";
import { RaceVideo } from "./video.js";
import { RACE_TYPES, dateTime } from "./format.js";
import { Trophy } from "./icons.js";

export const SCENES = ["race", "race-1up", "race-2up", "leaderboard", "intro"];

function Title({ state }) {
  const race = state.race;
  if (!race) return null;
  return html`<div class="title-bar"><span class="live-tag">LIVE</span><span class="race-name">${race.config.name}</span></div>`;
}

function Commentators({ count }) {
  return html`<div class="commentators">${Array.from({ length: count }, (_, i) =>
    html`<div class="cutout" key=${i} aria-label=${`Commentator ${i + 1} frame`}><span>Commentator ${i + 1}</span></div>`)}</div>`;
}

function Broadcast({ raceId, viewer, scene }) {
  const [state] = useRace(raceId, viewer);
  const racers = useRacers(raceId, viewer, state.queue.version);
  const name = namer(racers, state.leaderboard);
  useTick(250);
  document.body.dataset.connection = state.connection.state;
  document.body.dataset.lastEventId = window.__raceSocket && window.__raceSocket.lastEventId !== null ? window.__raceSocket.lastEventId : "";
  const board = html`<${Leaderboard} rows=${state.leaderboard.slice(0, 10)} name=${name} title="LEADERBOARD" compact=${true} />`;
  const winner = state.winner && html`<div class="winner-banner" role="status"><${Trophy} /> ${name(state.winner)} wins!</div>`;
  if (scene === "leaderboard") {
    return html`<div class="scene scene-leaderboard"><${Title} state=${state} />${board}${winner}</div>`;
  }
  if (scene === "intro") {
    const race = state.race;
    return html`<div class="scene scene-intro">
      ${race && html`<div class="intro-card"><p class="kicker">Trackside LIVE</p><h1>${race.config.name}</h1>
        <p>${RACE_TYPES[race.config.race_type]} · ${dateTime(race.config.start, race.config.time_zone)}</p></div>`}
      <${ComingUp} state=${state} name=${name} />${winner}
    </div>`;
  }
  const commentators = scene === "race-1up" ? 1 : scene === "race-2up" ? 2 : 0;
  return html`<div class=${`scene scene-race commentators-${commentators}`}>
    <div class="race-frame">
      <${RaceVideo} raceId=${raceId} viewer=${viewer} running=${state.simulator.status === "running"} retryMs=${3000}>
        <${Hud} state=${state} name=${name} />
        <${Countdown} state=${state} name=${name} />
      </${RaceVideo}>
    </div>
    ${commentators > 0 && html`<${Commentators} count=${commentators} />`}
    <div class="side">${board}<${ComingUp} state=${state} name=${name} /></div>
    <${Title} state=${state} />${winner}
  </div>`;
}

const match = location.pathname.match(/^\/broadcast\/(\d+)/);
const params = new URLSearchParams(location.search);
const scene = SCENES.includes(params.get("scene")) ? params.get("scene") : "race";
document.body.dataset.scene = scene;
if (params.get("chroma") === "1") document.documentElement.classList.add("chroma");
render(html`<${Broadcast} raceId=${Number(match[1])} viewer=${params.get("viewer")} scene=${scene} />`, document.getElementById("stage"));
