// Account: API tokens (create: shown once; list; revoke), cars (a car and its token), and for
// organizers the server's invitations and sign-up mode.
import { html, useState } from "../lib.js";
import { api, del, post } from "../api.js";
import { ConfirmButton, CopyField, ErrorNote, Field, Notice } from "../ui.js";
import { useFetch } from "../hooks.js";
import { session } from "../session.js";
import { shortDate } from "../format.js";

/** A secret the server shows once: copy it now, it cannot be shown again. */
function OnceSecret({ label, secret, onDone }) {
  return html`<div class="once-secret" role="group" aria-label=${label}>
    <${Notice}>Copy this token now: it is shown only once and cannot be shown again.</${Notice}>
    <${CopyField} label=${label} value=${secret} buttonLabel=${`Copy ${label}`} buttonText="Copy" />
    <button type="button" onClick=${onDone}>Done</button>
  </div>`;
}

function Tokens() {
  const tokens = useFetch("/api/tokens");
  const [name, setName] = useState("");
  const [secret, setSecret] = useState(null);
  const [error, setError] = useState(null);
  const list = ((tokens.data && tokens.data.tokens) || []).filter((t) => t.kind !== "car");
  const create = async (event) => {
    event.preventDefault();
    setError(null);
    try {
      const made = await post("/api/tokens", { name });
      setSecret(made.token);
      setName("");
      tokens.reload();
    } catch (failure) {
      setError(failure);
    }
  };
  const revoke = async (id) => {
    try {
      await del(`/api/tokens/${id}`);
      tokens.reload();
    } catch (failure) {
      setError(failure);
    }
  };
  return html`<section class="card" aria-label="API tokens">
    <h2>API tokens</h2>
    <p class="hint">Tokens let scripts and the <code>trackside</code> command line act as you (<code>Authorization: Bearer …</code>).</p>
    <form class="inline-form" onSubmit=${create}>
      <${Field} label="Token name"><input required maxlength="64" value=${name} onInput=${(e) => setName(e.currentTarget.value)} /></${Field}>
      <button type="submit" class="primary">Create token</button>
    </form>
    ${secret && html`<${OnceSecret} label="New API token" secret=${secret} onDone=${() => setSecret(null)} />`}
    <${ErrorNote} error=${error || tokens.error} />
    ${list.length === 0 ? html`<p class="empty">No tokens yet.</p>` : html`<table aria-label="Your API tokens">
      <thead><tr><th>Name</th><th>Created</th><th>Last used</th><th>State</th><th></th></tr></thead>
      <tbody>${list.map((t) => html`<tr key=${t.id}><td>${t.name}</td><td>${shortDate(t.created_at)}</td>
        <td>${t.last_used_at ? shortDate(t.last_used_at) : "Never"}</td><td>${t.revoked ? "Revoked" : "Active"}</td>
        <td>${!t.revoked && html`<${ConfirmButton} label=${`Revoke ${t.name}`} confirmLabel="Revoke token" question=${`Revoke ${t.name}? Programs using it stop working.`} onConfirm=${() => revoke(t.id)} />`}</td></tr>`)}</tbody></table>`}
  </section>`;
}

function Cars() {
  const tokens = useFetch("/api/tokens");
  const [name, setName] = useState("");
  const [secret, setSecret] = useState(null);
  const [error, setError] = useState(null);
  const list = ((tokens.data && tokens.data.tokens) || []).filter((t) => t.kind === "car");
  const create = async (event) => {
    event.preventDefault();
    setError(null);
    try {
      const made = await post("/api/cars", { name });
      setSecret(made.token);
      setName("");
      tokens.reload();
    } catch (failure) {
      setError(failure);
    }
  };
  return html`<section class="card" aria-label="Cars">
    <h2>Cars</h2>
    <p class="hint">A physical car joins races with its own token (set it in the car agent's configuration).</p>
    <form class="inline-form" onSubmit=${create}>
      <${Field} label="Car name"><input required maxlength="64" value=${name} onInput=${(e) => setName(e.currentTarget.value)} /></${Field}>
      <button type="submit" class="primary">Create car</button>
    </form>
    ${secret && html`<${OnceSecret} label="New car token" secret=${secret} onDone=${() => setSecret(null)} />`}
    <${ErrorNote} error=${error} />
    ${list.length > 0 && html`<ul>${list.map((t) => html`<li key=${t.id}>${t.name} (${t.revoked ? "token revoked" : "active"}) <${ConfirmButton}
      label=${`Revoke ${t.name}'s token`} confirmLabel="Revoke token" question="The car can no longer connect." onConfirm=${() => del(`/api/tokens/${t.id}`).then(tokens.reload, setError)} /></li>`)}</ul>`}
  </section>`;
}

function ServerAccess() {
  const [invitation, setInvitation] = useState(null);
  const [uses, setUses] = useState(1);
  const [mode, setMode] = useState("");
  const [note, setNote] = useState("");
  const [error, setError] = useState(null);
  const invite = async () => {
    try {
      setInvitation(await post("/api/invitations", { max_uses: Number(uses) }));
    } catch (failure) {
      setError(failure);
    }
  };
  const saveMode = async (value) => {
    try {
      await api("PUT", "/api/server/signup-mode", { mode: value });
      setMode(value);
      setNote(value === "open" ? "Anyone can now sign up." : "Sign-up now needs an invitation.");
    } catch (failure) {
      setError(failure);
    }
  };
  return html`<section class="card" aria-label="Server access">
    <h2>Server access</h2>
    <${Field} label="Uses"><input type="number" min="1" max="10000" value=${uses} onInput=${(e) => setUses(e.currentTarget.value)} /></${Field}>
    <button type="button" onClick=${invite}>Create invitation</button>
    ${invitation && html`<${CopyField} label="Sign-up link" value=${`${location.origin}/signup?invitation=${invitation.code}`} buttonLabel="Copy sign-up link" />
      <p class="hint">Expires ${shortDate(invitation.expires_at)}; ${invitation.max_uses} use(s).</p>`}
    <div role="radiogroup" aria-label="Sign-up mode">
      <label class="choice"><input type="radio" name="signup" checked=${mode === "invitation"} onChange=${() => saveMode("invitation")} />Sign-up by invitation only</label>
      <label class="choice"><input type="radio" name="signup" checked=${mode === "open"} onChange=${() => saveMode("open")} />Anyone can sign up</label>
    </div>
    ${note && html`<${Notice}>${note}</${Notice}>`}
    <${ErrorNote} error=${error} />
  </section>`;
}

export function AccountPage() {
  const me = session();
  return html`<div class="page workshop account-page">
    <h1>Account</h1>
    <p>${me.email}${me.alias ? ` · racer name ${me.alias}` : ""}</p>
    <div class="details-grid"><${Tokens} /><${Cars} />${me.role === "organizer" && html`<${ServerAccess} />`}</div>
  </div>`;
}
