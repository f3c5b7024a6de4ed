// Manage races (guide "Manage a community race"): the races table with status and Actions (View
// leaderboard, Copy/Reset invitation link, Export race participants to CSV, Edit race details,
// Close race, Delete race) and the chosen race's Racers with Remove participants.
import { html, useState } from "../lib.js";
import { del, post } from "../api.js";
import { ConfirmButton, ErrorNote, Link, Notice, navigate } from "../ui.js";
import { useFetch } from "../hooks.js";
import { FORMATS, STATUS, shortDate } from "../format.js";
import { Invitation } from "./invitation.js";

function Racers({ raceId }) {
  const racers = useFetch(`/api/races/${raceId}/racers`);
  const [picked, setPicked] = useState(new Set());
  const [error, setError] = useState(null);
  const list = ((racers.data && racers.data.racers) || []).filter((r) => !r.removed);
  const toggle = (id) => setPicked((p) => { const n = new Set(p); n.has(id) ? n.delete(id) : n.add(id); return n; });
  const remove = async (ids) => {
    try {
      for (const id of ids) await del(`/api/races/${raceId}/racers/${id}`);
      setPicked(new Set());
      racers.reload();
    } catch (failure) {
      setError(failure);
    }
  };
  return html`<section aria-label="Racers">
    <h3>Racers (${list.length})</h3>
    <${ErrorNote} error=${error} />
    ${list.length === 0 ? html`<p class="empty">Nobody has joined yet: share the invitation link.</p>` : html`<table>
      <thead><tr><th></th><th>Alias</th><th>Email</th><th>Date joined</th><th>Submissions</th><th></th></tr></thead>
      <tbody>${list.map((r) => html`<tr key=${r.user_id}>
        <td><input type="checkbox" aria-label=${`Select ${r.alias}`} checked=${picked.has(r.user_id)} onChange=${() => toggle(r.user_id)} /></td>
        <td>${r.alias}</td><td>${r.email}</td><td>${shortDate(r.joined_at)}</td><td>${r.submissions || "Awaiting submission"}</td>
        <td><${ConfirmButton} label=${`Remove ${r.alias}`} confirmLabel="Remove racer" question=${`Remove ${r.alias} from this race?`} onConfirm=${() => remove([r.user_id])} /></td>
      </tr>`)}</tbody></table>
      <${ConfirmButton} label="Remove participants" confirmLabel="Remove" disabled=${picked.size === 0}
        question=${`Remove ${picked.size} racer(s)? They lose access to the race.`} onConfirm=${() => remove([...picked])} />`}
  </section>`;
}

function Actions({ race, reload, setNote, setError }) {
  const id = race.id;
  const act = async (fn, note) => {
    try {
      await fn();
      setNote(note);
      setError(null);
      reload();
    } catch (failure) {
      setError(failure);
    }
  };
  return html`<div class="actions" role="group" aria-label="Actions">
    <${Link} class="button" href=${`/races/${id}`}>View leaderboard</${Link}>
    ${race.format === "live" && race.status !== "closed" && html`<${Link} class="button" href=${`/races/${id}/live`}>Join now</${Link}>`}
    <${Link} class="button" href=${`/manage/${id}/edit`}>Edit race details</${Link}>
    <a class="button" href=${`/api/races/${id}/participants.csv`} download>Export race participants to CSV</a>
    <${ConfirmButton} label="Close race" confirmLabel="Close race now" disabled=${race.status === "closed"}
      question="End the race now, before its closing date?" onConfirm=${() => act(() => post(`/api/races/${id}/close`), "Race closed.")} />
    <${ConfirmButton} label="Delete race" confirmLabel="Delete race forever" className="danger"
      question="This permanently removes the race and its results for every racer." onConfirm=${() => act(async () => { await del(`/api/races/${id}`); navigate("/manage", { replace: true }); }, "Race deleted.")} />
  </div>`;
}

export function ManageRaces() {
  const races = useFetch("/api/races");
  const tracks = useFetch("/api/tracks");
  const params = new URLSearchParams(location.search);
  const [selected, setSelected] = useState(Number(params.get("race")) || null);
  const [note, setNote] = useState("");
  const [error, setError] = useState(null);
  const list = (races.data && races.data.races) || [];
  const race = list.find((r) => r.id === selected);
  const trackName = (id) => { const t = ((tracks.data && tracks.data.tracks) || []).find((x) => x.track_id === id); return t ? t.name : id; };
  const [search, setSearch] = useState("");
  const shown = list.filter((r) => r.config.name.toLowerCase().includes(search.toLowerCase()));
  return html`<div class="page manage">
    <nav class="crumbs" aria-label="Breadcrumb"><${Link} href="/races">Community races</${Link}> › Manage races</nav>
    <h1>Manage races</h1>
    <p class="page-actions"><${Link} class="button primary" href="/manage/new">Create race</${Link}></p>
    <${ErrorNote} error=${races.error || error} />
    ${note && html`<${Notice}>${note}</${Notice}>`}
    <input type="search" aria-label="Search races" placeholder="Search races" value=${search} onInput=${(e) => setSearch(e.currentTarget.value)} />
    <table class="races-table" aria-label=${`Races (${list.length})`}>
      <thead><tr><th></th><th>Name</th><th>Format</th><th>Status</th><th>Race dates</th><th>Race track</th></tr></thead>
      <tbody>${shown.map((r) => html`<tr key=${r.id} class=${r.id === selected ? "selected" : ""} onClick=${() => setSelected(r.id)}>
        <td><input type="radio" name="race" aria-label=${`Choose ${r.config.name}`} checked=${r.id === selected} onChange=${() => setSelected(r.id)} /></td>
        <td>${r.config.name}</td><td>${FORMATS[r.format]}</td><td>${STATUS[r.status]}</td>
        <td>${shortDate(r.config.start)} - ${shortDate(r.config.end)}</td><td>${trackName(r.config.track_id)}</td></tr>`)}</tbody>
    </table>
    ${race && html`<section class="card managed" aria-label=${race.config.name}>
      <h2>${race.config.name}</h2>
      <${Actions} race=${race} reload=${races.reload} setNote=${setNote} setError=${setError} />
      <${Invitation} race=${race} />
      <${Racers} raceId=${race.id} key=${race.id} />
    </section>`}
  </div>`;
}
