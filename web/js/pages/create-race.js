// Create race (guide "Organize a community race", "Customize a race"): Race details → Review race
// details → Submit → the invitation (Copy invitation link, suggested email, Reset invitation link).
// The same form edits a race (Edit race details).
import { html, useEffect, useState } from "../lib.js";
import { patch, post } from "../api.js";
import { ErrorNote, Field, Link, navigate } from "../ui.js";
import { useFetch } from "../hooks.js";
import { FORMATS, RACE_TYPES, RANKING, dateTime, rules } from "../format.js";
import { Invitation } from "./invitation.js";

const zone = () => Intl.DateTimeFormat().resolvedOptions().timeZone || "UTC";
const localInput = (date) => {
  const d = new Date(date.getTime() - date.getTimezoneOffset() * 60000);
  return d.toISOString().slice(0, 16);
};
const SORTS = {
  popularity: ["Popularity: Most to least", (a, b) => 0],
  difficulty_desc: ["Difficulty: Most to least", (a, b) => b.difficulty - a.difficulty],
  difficulty_asc: ["Difficulty: Least to most", (a, b) => a.difficulty - b.difficulty],
  length_desc: ["Length: Longest to shortest", (a, b) => b.length_m - a.length_m],
  length_asc: ["Length: Shortest to longest", (a, b) => a.length_m - b.length_m],
};

function defaults() {
  const start = new Date(Date.now() + 3600_000);
  start.setMinutes(0, 0, 0);
  return {
    format: "live", race_type: "time_trial", name: "", start: localInput(start), end: localInput(new Date(start.getTime() + 4 * 3600_000)),
    track_id: "", direction: "", description: "", ranking: "best_lap", min_consecutive_laps: 3, off_track_penalty_s: 3,
    collision_penalty_s: 3, resets: "unlimited", time_per_racer_min: 3, replay_s: 15,
    oa_randomize: false, oa_count: 4,
    obstacles: [["outside", 20], ["inside", 40], ["outside", 60], ["outside", 80], ["inside", 85], ["outside", 88]],
    bots: 3, bot_speed: 1.0, lane_change: false, min_lane: 2, max_lane: 5,
  };
}

function fromRace(race) {
  const c = race.config;
  const d = defaults();
  const oa = c.object_avoidance;
  const hb = c.head_to_bot;
  return {
    ...d, format: c.format, race_type: c.race_type, name: c.name, start: localInput(new Date(c.start)), end: localInput(new Date(c.end)),
    track_id: c.track_id, direction: c.direction, description: c.description, ranking: c.ranking,
    min_consecutive_laps: c.min_consecutive_laps, off_track_penalty_s: c.off_track_penalty_s, collision_penalty_s: c.collision_penalty_s,
    resets: c.resets, time_per_racer_min: c.time_per_racer_min, replay_s: c.replay_s,
    oa_randomize: oa ? oa.randomize : false, oa_count: oa ? oa.count : 4,
    obstacles: oa && oa.obstacles.length ? [...oa.obstacles.map((o) => [o.lane, o.location_pct]), ...d.obstacles].slice(0, 6) : d.obstacles,
    bots: hb ? hb.bots : 3, bot_speed: hb ? hb.speed_mps : 1.0, lane_change: hb ? hb.lane_change : false,
    min_lane: hb ? hb.min_lane_change_s : 2, max_lane: hb ? hb.max_lane_change_s : 5,
  };
}

export function toConfig(f) {
  const live = f.format === "live";
  const config = {
    name: f.name.trim(), format: f.format, race_type: f.race_type, track_id: f.track_id, time_zone: zone(),
    start: new Date(f.start).toISOString(), end: new Date(f.end).toISOString(),
    description: f.description, off_track_penalty_s: Number(f.off_track_penalty_s), resets: f.resets,
  };
  if (f.direction) config.direction = f.direction;
  if (live) {
    config.time_per_racer_min = Number(f.time_per_racer_min);
    config.replay_s = Number(f.replay_s);
  } else {
    config.ranking = f.ranking;
    config.min_consecutive_laps = Number(f.min_consecutive_laps);
  }
  if (f.race_type !== "time_trial") config.collision_penalty_s = Number(f.collision_penalty_s);
  if (f.race_type === "object_avoidance") {
    const count = Number(f.oa_count);
    config.object_avoidance = f.oa_randomize
      ? { randomize: true, count }
      : { randomize: false, count, obstacles: f.obstacles.slice(0, count).map(([lane, pct]) => ({ lane, location_pct: Number(pct) })) };
  }
  if (f.race_type === "head_to_bot") {
    config.head_to_bot = { bots: Number(f.bots), speed_mps: Number(f.bot_speed), lane_change: f.lane_change,
      min_lane_change_s: Number(f.min_lane), max_lane_change_s: Number(f.max_lane) };
  }
  return config;
}

function RaceForm({ form, set, tracks, fields, editing }) {
  const [sort, setSort] = useState("popularity");
  const bind = (key, number = false) => ({
    value: form[key],
    onInput: (e) => set({ [key]: number ? e.currentTarget.valueAsNumber : e.currentTarget.value }),
  });
  const err = (key) => fields && fields[key] && fields[key].join(" ");
  const sorted = [...tracks].sort(SORTS[sort][1]);
  const track = tracks.find((t) => t.track_id === form.track_id);
  const live = form.format === "live";
  return html`<div class="race-form">
    <fieldset disabled=${editing}><legend>Competition format</legend>
      ${Object.entries(FORMATS).map(([key, label]) => html`<label class="choice"><input type="radio" name="format" value=${key}
        checked=${form.format === key} onChange=${() => set({ format: key })} /> ${label}</label>`)}
      <p class="hint">${live ? "A real-time event: racers take turns and can use speed control on their run." : "Racers submit models at any time between the start and end dates."}</p>
    </fieldset>
    <fieldset><legend>Race type</legend>
      ${Object.entries(RACE_TYPES).map(([key, label]) => html`<label class="choice"><input type="radio" name="race_type" value=${key}
        checked=${form.race_type === key} onChange=${() => set({ race_type: key })} /> ${label}</label>`)}
    </fieldset>
    <${Field} label="Name of the race" error=${err("name")}><input required maxlength="64" ...${bind("name")} /></${Field}>
    <fieldset><legend>${live ? "LIVE race date" : "Race dates"}</legend>
      <p class="hint">Your time zone: ${zone()}.${live ? " LIVE races last four hours by default." : ""}</p>
      <${Field} label="Start date" error=${err("start")}><input type="datetime-local" required ...${bind("start")} /></${Field}>
      <${Field} label="End date" error=${err("end")}><input type="datetime-local" required ...${bind("end")} /></${Field}>
    </fieldset>
    <details class="customizations" open>
      <summary>Race customizations</summary>
      <fieldset><legend>Competition tracks</legend>
        <${Field} label="Sort by"><select value=${sort} onChange=${(e) => setSort(e.currentTarget.value)}>
          ${Object.entries(SORTS).map(([k, [label]]) => html`<option value=${k}>${label}</option>`)}</select></${Field}>
        <${Field} label="Competition track" error=${err("track_id")}>
          <select required value=${form.track_id} onChange=${(e) => set({ track_id: e.currentTarget.value, direction: "" })}>
            <option value="" disabled>Choose a track</option>
            ${sorted.map((t) => html`<option value=${t.track_id}>${t.name} (${t.length_m} m)</option>`)}
          </select></${Field}>
        ${track && html`<p class="hint">${track.description}${/Length/.test(track.description) ? "" : ` Length: ${track.length_m} m · Width: ${Math.round(track.width_m * 100)} cm`}</p>`}
        ${track && track.directions.length > 1 && html`<${Field} label="Direction"><select value=${form.direction || track.default_direction}
          onChange=${(e) => set({ direction: e.currentTarget.value })}>
          ${track.directions.map((d) => html`<option value=${d}>${d === "CLOCKWISE" ? "Clockwise" : "Counterclockwise"}</option>`)}</select></${Field}>`}
      </fieldset>
      <${Field} label="Description of race" hint="Goals and rules; for LIVE races add your video conference or LIVE stream link." error=${err("description")}>
        <textarea rows="3" maxlength="2000" ...${bind("description")}></textarea></${Field}>
      ${!live && html`<${Field} label="Ranking method" error=${err("ranking")}><select value=${form.ranking} onChange=${(e) => set({ ranking: e.currentTarget.value })}>
          ${Object.entries(RANKING).map(([k, label]) => html`<option value=${k}>${label}</option>`)}</select></${Field}>
        <${Field} label="Minimum laps" error=${err("min_consecutive_laps")}><input type="number" min="1" max="10" ...${bind("min_consecutive_laps", true)} /></${Field}>`}
      ${live && html`<${Field} label="Time per racer (minutes)" error=${err("time_per_racer_min")}><input type="number" min="1" max="10" ...${bind("time_per_racer_min", true)} /></${Field}>
        <${Field} label="Replay after the checkered flag (seconds)" error=${err("replay_s")}><input type="number" min="0" max="60" ...${bind("replay_s", true)} /></${Field}>`}
      <${Field} label="Off-track penalty (seconds)" error=${err("off_track_penalty_s")}><input type="number" min="0" max="30" step="0.5" ...${bind("off_track_penalty_s", true)} /></${Field}>
      <${Field} label="Resets"><select value=${form.resets} onChange=${(e) => set({ resets: e.currentTarget.value })}>
        <option value="unlimited">Unlimited resets</option><option value="none">No resets</option></select></${Field}>
      ${form.race_type !== "time_trial" && html`<${Field} label="Collision penalty (seconds)" error=${err("collision_penalty_s")}>
        <input type="number" min="0" max="30" step="0.5" ...${bind("collision_penalty_s", true)} /></${Field}>`}
      ${form.race_type === "object_avoidance" && html`<fieldset><legend>Object avoidance</legend>
        <${Field} label="Number of objects"><input type="number" min="1" max="6" ...${bind("oa_count", true)} /></${Field}>
        <label class="choice"><input type="checkbox" checked=${form.oa_randomize} onChange=${(e) => set({ oa_randomize: e.currentTarget.checked })} /> Include random objects</label>
        ${!form.oa_randomize && form.obstacles.slice(0, Math.max(1, Math.min(6, form.oa_count || 1))).map(([lane, pct], i) => html`<div class="obstacle" key=${i}>
          <span>Obstacle ${i + 1}</span>
          <${Field} label=${`Obstacle ${i + 1} lane placement`}><select value=${lane} onChange=${(e) => {
            const next = form.obstacles.map((o, j) => (j === i ? [e.currentTarget.value, o[1]] : o)); set({ obstacles: next }); }}>
            <option value="outside">Outside lane</option><option value="inside">Inside lane</option></select></${Field}>
          <${Field} label=${`Obstacle ${i + 1} location (%) between start and finish`}><input type="number" min="7" max="90" value=${pct}
            onInput=${(e) => { const next = form.obstacles.map((o, j) => (j === i ? [o[0], e.currentTarget.valueAsNumber] : o)); set({ obstacles: next }); }} /></${Field}>
        </div>`)}
        ${Object.entries(fields || {}).filter(([k]) => k.startsWith("object_avoidance")).map(([k, v]) => html`<p class="field-error" role="alert">${v.join(" ")}</p>`)}
      </fieldset>`}
      ${form.race_type === "head_to_bot" && html`<fieldset><legend>Head-to-bot</legend>
        <${Field} label="Number of bot cars" hint="1-6."><input type="number" min="1" max="6" ...${bind("bots", true)} /></${Field}>
        <${Field} label="Bot car speed (m/s)" hint="0.2-6 meters per second."><input type="number" min="0.2" max="6" step="0.1" ...${bind("bot_speed", true)} /></${Field}>
        <label class="choice"><input type="checkbox" checked=${form.lane_change} onChange=${(e) => set({ lane_change: e.currentTarget.checked })} /> Enable lane change</label>
        ${form.lane_change && html`<${Field} label="Minimum lane change time (seconds)"><input type="number" min="1" max="8" ...${bind("min_lane", true)} /></${Field}>
          <${Field} label="Maximum lane change time (seconds)"><input type="number" min="1" max="8" ...${bind("max_lane", true)} /></${Field}>`}
        ${Object.entries(fields || {}).filter(([k]) => k.startsWith("head_to_bot")).map(([k, v]) => html`<p class="field-error" role="alert">${v.join(" ")}</p>`)}
      </fieldset>`}
    </details>
    <p class="hint">Community races visibility: races are private. Only racers you invite (by the race's invitation link) can view them, and you can remove any racer.</p>
  </div>`;
}

function Review({ config, tracks }) {
  const track = tracks.find((t) => t.track_id === config.track_id);
  const full = { min_consecutive_laps: 1, ranking: "best_lap", collision_penalty_s: 3, ...config };
  return html`<section class="card review" aria-label="Review race details">
    <dl>
      <div><dt>Name</dt><dd>${config.name}</dd></div>
      <div><dt>Competition format</dt><dd>${FORMATS[config.format]}</dd></div>
      <div><dt>Race type</dt><dd>${RACE_TYPES[config.race_type]}</dd></div>
      <div><dt>Start</dt><dd>${dateTime(config.start)}</dd></div>
      <div><dt>End</dt><dd>${dateTime(config.end)}</dd></div>
      <div><dt>Competition track</dt><dd>${track ? track.name : config.track_id}</dd></div>
      ${rules(full).map(([k, v]) => html`<div><dt>${k}</dt><dd>${v}</dd></div>`)}
      ${config.description && html`<div><dt>Description</dt><dd>${config.description}</dd></div>`}
    </dl>
  </section>`;
}

export function CreateRace({ raceId = null }) {
  const tracks = useFetch("/api/tracks");
  const existing = useFetch(raceId ? `/api/races/${raceId}` : "/api/auth/me");
  const [form, setForm] = useState(null);
  const [step, setStep] = useState("details");
  const [error, setError] = useState(null);
  const [created, setCreated] = useState(null);
  const list = (tracks.data && tracks.data.tracks) || [];
  useEffect(() => {
    if (raceId && existing.data && existing.data.config) setForm(fromRace(existing.data));
    else if (!raceId && list.length && !form) setForm({ ...defaults(), track_id: list[0].track_id });
  }, [existing.data, list.length]);
  if (created) return html`<${Invitation} race=${created} onDone=${() => navigate(`/manage?race=${created.id}`)} />`;
  if (!form) return html`<p class="loading">Loading…</p>`;
  const set = (changes) => setForm((f) => ({ ...f, ...changes }));
  const next = (event) => {
    event.preventDefault();
    setError(null);
    setStep("review");
  };
  const submit = async () => {
    try {
      if (raceId) {
        const { format, ...changes } = toConfig(form);
        await patch(`/api/races/${raceId}`, changes);
        navigate(`/manage?race=${raceId}`);
      } else {
        setCreated(await post("/api/races", toConfig(form)));
      }
    } catch (failure) {
      setError(failure);
      setStep("details");
    }
  };
  const title = raceId ? "Edit race details" : "Create race";
  return html`<div class="page create-race">
    <nav class="crumbs" aria-label="Breadcrumb"><${Link} href="/races">Community races</${Link}> › <${Link} href="/manage">Manage races</${Link}> › ${title}</nav>
    <h1>${title}</h1>
    <ol class="steps" aria-label="Steps"><li class=${step === "details" ? "now" : "done"}>Race details</li><li class=${step === "review" ? "now" : ""}>Review race details</li></ol>
    <${ErrorNote} error=${error} />
    ${step === "details"
      ? html`<form onSubmit=${next} aria-label="Race details">
          <${RaceForm} form=${form} set=${set} tracks=${list} fields=${error && error.fields} editing=${Boolean(raceId)} />
          <div class="actions"><${Link} class="button" href="/manage">Cancel</${Link}><button class="primary" type="submit">Next</button></div>
        </form>`
      : html`<div><h2>Review race details</h2><${Review} config=${toConfig(form)} tracks=${list} />
          <div class="actions"><button type="button" onClick=${() => setStep("details")}>Previous</button>
            <button type="button" onClick=${() => setStep("details")}>Edit</button>
            <button type="button" class="primary" onClick=${submit}>${raceId ? "Save changes" : "Submit"}</button></div></div>`}
  </div>`;
}
