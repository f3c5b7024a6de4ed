// Community races: the race cards (guide "Join a community race"), with rank and gap for racers.
import { html, useEffect, useState } from "../lib.js";
import { get } from "../api.js";
import { RACE_TYPES, cardHeadline, gap, raceWhen } from "../format.js";
import { session } from "../session.js";
import { ErrorNote, Link } from "../ui.js";
import { useFetch } from "../hooks.js";

function useStanding(race, me) {
  const [standing, setStanding] = useState(null);
  useEffect(() => {
    if (!me || me.role !== "racer") return;
    Promise.all([get(`/api/races/${race.id}/leaderboard`), get(`/api/races/${race.id}/submissions`)]).then(
      ([board, subs]) => {
        const mine = board.rows.find((r) => r.racer_id === me.user_id);
        setStanding({ rank: mine ? mine.rank : null, total: board.rows.length, gapMs: mine ? mine.gap_ms : null, submitted: subs.submissions.length > 0 });
      },
      () => setStanding(null),
    );
  }, [race.id]);
  return standing;
}

export function RaceCard({ race, tracks }) {
  const me = session();
  const standing = useStanding(race, me);
  const c = race.config;
  const track = tracks.find((t) => t.track_id === c.track_id);
  const live = race.format === "live";
  const isRacer = me && me.role === "racer";
  const open = race.status === "open";
  return html`<article class=${"race-card " + race.format} aria-label=${c.name}>
    <p class="headline">${cardHeadline(race)}</p>
    <h2><${Link} href=${`/races/${race.id}`}>${c.name}</${Link}></h2>
    <p class="when">${raceWhen(race)}</p>
    <dl>
      <div><dt>Race type</dt><dd>${RACE_TYPES[c.race_type]}</dd></div>
      <div><dt>Race track</dt><dd>${track ? track.name : c.track_id}</dd></div>
    </dl>
    <p class="entries">${open ? "Race entries open" : race.status === "closed" ? "Race closed" : "Opening soon"}</p>
    ${isRacer && html`<p class="standing">
      <span>Your rank <strong>${standing && standing.rank ? `${standing.rank}/${standing.total}` : "--/--"}</strong></span>
      <span>Gap to fastest <strong>${standing && standing.rank ? (standing.gapMs ? gap(standing.gapMs) : "+00:00.000") : "--"}</strong></span></p>`}
    <div class="actions">
      <${Link} class="button" href=${`/races/${race.id}`}>Leaderboard</${Link}>
      ${live && open && html`<${Link} class="button primary" href=${`/races/${race.id}/live`}>${me && me.role === "organizer" ? "Join now" : "Go to LIVE race"}</${Link}>`}
      ${isRacer && open && html`<${Link} class="button" href=${`/races/${race.id}/enter`}>${standing && standing.submitted ? "Race again" : "Enter race"}</${Link}>`}
    </div>
  </article>`;
}

export function RaceCards() {
  const me = session();
  const races = useFetch("/api/races");
  const tracks = useFetch("/api/tracks");
  const list = (races.data && races.data.races) || [];
  const openRaces = list.filter((r) => r.status !== "closed");
  const done = list.filter((r) => r.status === "closed");
  return html`<div class="page">
    <h1>Welcome to Trackside community races${me && me.alias ? `, ${me.alias}` : ""}!</h1>
    ${me && me.role === "organizer" && html`<p class="page-actions">
      <${Link} class="button" href="/manage">Manage races</${Link}> <${Link} class="button primary" href="/manage/new">Create race</${Link}></p>`}
    <${ErrorNote} error=${races.error} />
    <h2>Open community races</h2>
    ${races.loading && !races.data ? html`<p class="loading">Loading races…</p>`
      : openRaces.length === 0 ? html`<p class="empty">${me && me.role === "organizer"
        ? "No races yet: choose Create race."
        : "No races yet. Open the invitation link your race organizer sent you to join a race."}</p>`
      : html`<div class="cards">${openRaces.map((race) => html`<${RaceCard} key=${race.id} race=${race} tracks=${(tracks.data && tracks.data.tracks) || []} />`)}</div>`}
    ${done.length > 0 && html`<details class="completed"><summary>Completed races (${done.length})</summary>
      <div class="cards">${done.map((race) => html`<${RaceCard} key=${race.id} race=${race} tracks=${(tracks.data && tracks.data.tracks) || []} />`)}</div></details>`}
  </div>`;
}
