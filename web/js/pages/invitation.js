// The race invitation: Copy invitation link, the suggested email, Reset invitation link.
import { html, useEffect, useState } from "../lib.js";
import { get, post } from "../api.js";
import { ConfirmButton, CopyField, ErrorNote } from "../ui.js";
import { RACE_TYPES, dateTime } from "../format.js";

const article = (word) => (/^[aeiou]/i.test(word) ? "an" : "a");

export function emailTemplate(race, link) {
  const c = race.config;
  const kind = race.format === "live" ? "LIVE race" : "race";
  const when = race.format === "live" ? `on ${dateTime(c.start, c.time_zone)}` : `from ${dateTime(c.start, c.time_zone)} to ${dateTime(c.end, c.time_zone)}`;
  return [
    `Welcome to ${c.name}, a Trackside ${kind}!`,
    "",
    `You're invited to ${c.name}, ${article(RACE_TYPES[c.race_type])} ${RACE_TYPES[c.race_type].toLowerCase()} race ${when}. The winner of this race earns <YOUR EVENT PRIZES>.`,
    "",
    `Join the race here: ${link}`,
    race.format === "live" ? "Submit your model before <MODEL SUBMISSION DEADLINE>. On race day meet us at <CONFERENCE BRIDGE LINK>." : "",
  ].join("\n");
}

export function Invitation({ race, onDone }) {
  const [link, setLink] = useState(null);
  const [error, setError] = useState(null);
  useEffect(() => {
    get(`/api/races/${race.id}/invitation`).then((inv) => setLink(inv.link), setError);
  }, [race.id]);
  const reset = async () => {
    try {
      setLink((await post(`/api/races/${race.id}/invitation/reset`)).link);
    } catch (failure) {
      setError(failure);
    }
  };
  return html`<section class="card invitation" role="dialog" aria-label="Invitation">
    <h2>Share with race participants</h2>
    <p>Only racers with this link can see and join ${race.config.name}. Racers may forward it; resetting the link stops new racers using the old one.</p>
    <${ErrorNote} error=${error} />
    ${link && html`<${CopyField} label="Invitation link" value=${link} buttonLabel="Copy invitation link" />
      <h3>Suggested email template</h3>
      <${CopyField} label="Suggested email" value=${emailTemplate(race, link)} multiline=${true} buttonLabel="Copy email" />`}
    <div class="actions">
      <${ConfirmButton} label="Reset invitation link" confirmLabel="Reset link" question="The current link stops working for racers who have not joined yet." onConfirm=${reset} />
      ${onDone && html`<button type="button" class="primary" onClick=${onDone}>Done</button>`}
    </div>
  </section>`;
}
