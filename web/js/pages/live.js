// The LIVE race page. Racers and spectators: welcome/wait message, video with its overlay, the
// countdown, LEADERBOARD, COMING UP and (racers) the speed control. The race's organizer gets the
// Race organizer control panel beside the video (guide "Run a LIVE race").
import { html, useState } from "../lib.js";
import { session } from "../session.js";
import { useAssignedCar, useRace, useRacers, namer, useTick } from "../hooks.js";
import { ComingUp, ConnectionBanner, Countdown, Hud, Leaderboard } from "../race-ui.js";
import { CAMERA_VIEWS, RaceVideo } from "../video.js";
import { api } from "../api.js";
import { SpeedControl } from "../speed-control.js";
import { ControlPanel } from "./control-panel.js";
import { Link } from "../ui.js";
import { comingUp } from "../race-state.js";
import { Trophy } from "../icons.js";

function Welcome({ state, name, myId }) {
  const race = state.race;
  if (!race) return null;
  if (state.winner) {
    return html`<div class="welcome winner" role="status"><h2><${Trophy} /> ${name(state.winner)} wins ${race.config.name}!</h2>
      <p>Thanks for racing. The final leaderboard stands below.</p></div>`;
  }
  const mine = comingUp(state).findIndex(({ entry }) => entry.racer_id === myId);
  if (state.run && state.run.racer_id === myId) return null;
  return html`<div class="welcome" role="status">
    <h2>Welcome to ${/\bLIVE$/i.test(race.config.name.trim()) ? race.config.name.trim() : `${race.config.name} LIVE`}!</h2>
    ${mine === 0 && !state.run
      ? html`<p class="up-next"><strong>You are up next.</strong> Be ready when your race organizer launches you.</p>`
      : mine > 0
        ? html`<p>You are number ${mine + 1} in the queue: see COMING UP for your live race time.</p>`
        : html`<p>Your race organizer is prepping the race. When it starts, look for your racer alias in the
            COMING UP section under the LEADERBOARD to find your live race time. If you need assistance, contact your race organizer.</p>`}
  </div>`;
}

export function LivePage({ raceId, viewer = null }) {
  const me = session();
  const [state, socketRef] = useRace(raceId, viewer);
  const racers = useRacers(raceId, viewer, state.queue.version);
  const name = namer(racers, state.leaderboard);
  useTick(250);
  const race = state.race;
  const myId = me ? me.user_id : null;
  const organizer = Boolean(race && me && race.organizer_id === me.user_id && me.role === "organizer");
  const racer = Boolean(me && me.role === "racer");
  const assignedCar = useAssignedCar(raceId, organizer);
  const [view, setView] = useState("chase");
  const [viewError, setViewError] = useState(null);
  // One encoder per race: the organizer's choice is the picture everyone (and OBS) sees.
  const switchView = async (next) => {
    setView(next);
    setViewError(null);
    try {
      await api("POST", `/api/races/${raceId}/video/view`, { view: next });
    } catch (error) {
      setViewError(error.message);
    }
  };
  if (state.connection.state === "forbidden" || state.connection.state === "not_found" || state.connection.state === "signed_out") {
    return html`<div class="page"><p class="error" role="alert">${state.connection.message}</p>
      ${!me && html`<${Link} class="button primary" href=${`/signin?next=${encodeURIComponent(location.pathname)}`}>Sign in</${Link}>`}</div>`;
  }
  if (!race) {
    // The page's shape depends on who you are in this race: draw it once the snapshot says.
    return html`<div class="page live-page"><p class="loading" role="status">${
      state.connection.state === "reconnecting" ? state.connection.message || "Reconnecting…" : "Connecting to the race…"}</p></div>`;
  }
  return html`<div class="page live-page">
    <nav class="crumbs" aria-label="Breadcrumb"><${Link} href="/races">Community races</${Link}> ›
      ${race ? html`<${Link} href=${`/races/${raceId}`}>${race.config.name}</${Link}>` : "…"} › LIVE</nav>
    <h1>LIVE: ${race ? race.config.name : "…"}</h1>
    <${ConnectionBanner} connection=${state.connection} />
    <div class=${"live-layout" + (organizer ? " organizer" : "")}>
      <div class="panel-col">${organizer && html`<${ControlPanel} state=${state} socketRef=${socketRef} name=${name} raceId=${raceId} />`}</div>
      <div class="live-main">
        <div class="welcome-slot">${(!organizer || state.winner) && html`<${Welcome} state=${state} name=${name} myId=${myId} />`}</div>
        <${RaceVideo} raceId=${raceId} viewer=${viewer} running=${state.simulator.status === "running"}>
          <${Hud} state=${state} name=${name} />
          <${Countdown} state=${state} name=${name} />
        </${RaceVideo}>
        ${organizer && assignedCar && html`<p class="hint camera">On the physical track the picture is
          ${" "}<strong>${assignedCar.name}</strong>'s own camera.</p>`}
        ${organizer && assignedCar === null && html`<label class="field inline camera"><span class="label">Camera view</span>
          <select value=${view} onChange=${(e) => switchView(e.currentTarget.value)}>
            ${CAMERA_VIEWS.map(([value, label]) => html`<option value=${value}>${label}</option>`)}
          </select></label>`}
        ${viewError && html`<p class="error" role="alert">${viewError}</p>`}
        ${racer && html`<${SpeedControl} state=${state} socketRef=${socketRef} myId=${myId} />`}
      </div>
      <div class="live-side">
        <${Leaderboard} rows=${state.leaderboard} name=${name} title="LEADERBOARD" myId=${myId} compact=${true} />
        ${!organizer && html`<${ComingUp} state=${state} name=${name} myId=${myId} />`}
      </div>
    </div>
  </div>`;
}
