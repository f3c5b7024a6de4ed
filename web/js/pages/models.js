// Your models (guide "Your models"): the list with status, sensor, algorithm, action space and
// actions per row; a model's page with Evaluate, Clone, Download (virtual folder, physical car
// bundle, the stock car's model.pb) and Delete.
import { html, useState } from "../lib.js";
import { del, post } from "../api.js";
import { ConfirmButton, ErrorNote, Field, Link, Notice, navigate } from "../ui.js";
import { useFetch } from "../hooks.js";
import { shortDate } from "../format.js";
import { ALGORITHMS, JOB_STATUS, NETWORKS, actionSummary, bytes, sensorsOf } from "../workshop.js";

const MODEL_STATUS = { ready: "Ready", importing: "Importing", failed: "Failed", deleting: "Deleting" };

/** Models and the training jobs not yet in the store, as the rows of one list. */
function rowsOf(models, jobs) {
  const training = jobs.filter((j) => j.kind === "training" && !j.model_id && j.status !== "canceled");
  return [
    ...training.map((j) => ({ key: `job-${j.id}`, name: j.name, status: j.status === "failed" ? "Failed" : "Training", job: j,
      metadata: j.config.model_metadata, created: j.created_at })),
    ...models.map((m) => ({ key: `model-${m.id}`, name: m.name, status: MODEL_STATUS[m.status] || m.status, model: m,
      metadata: m.metadata, created: m.created_at })),
  ];
}

export function ModelsList() {
  const models = useFetch("/api/models");
  const jobs = useFetch("/api/jobs");
  const rows = rowsOf((models.data && models.data.models) || [], (jobs.data && jobs.data.jobs) || []);
  return html`<div class="page workshop">
    <h1>Your models</h1>
    <p class="page-actions"><${Link} class="button primary" href="/models/new">Create model</${Link}>
      <${Link} class="button" href="/models/import">Import model</${Link}></p>
    <${ErrorNote} error=${models.error || jobs.error} />
    ${models.loading && !models.data ? html`<p class="loading">Loading models…</p>`
      : rows.length === 0 ? html`<p class="empty">No models yet: choose Create model to train one, or Import model.</p>`
      : html`<table class="models-table" aria-label=${`Models (${rows.length})`}>
        <thead><tr><th>Name</th><th>Status</th><th>Sensor</th><th>Algorithm</th><th>Action space</th><th>Created</th><th>Actions</th></tr></thead>
        <tbody>${rows.map((r) => html`<tr key=${r.key}>
          <td>${r.model ? html`<${Link} href=${`/models/${r.model.id}`}>${r.name}</${Link}>` : html`<${Link} href=${`/jobs/${r.job.id}`}>${r.name}</${Link}>`}</td>
          <td><span class=${"status " + r.status.toLowerCase()}>${r.status}</span></td>
          <td>${sensorsOf(r.metadata)}</td><td>${r.metadata ? ALGORITHMS[r.metadata.training_algorithm] || r.metadata.training_algorithm : ""}</td>
          <td>${actionSummary(r.metadata)}</td><td>${shortDate(r.created)}</td>
          <td><div class="row-actions">${r.model
            ? html`<${Link} class="button" href=${`/models/${r.model.id}`}>Open</${Link}>
                <a class="button" href=${`/api/models/${r.model.id}/export`} download>Download model</a>`
            : html`<${Link} class="button" href=${`/jobs/${r.job.id}`}>Training</${Link}>`}</div></td>
        </tr>`)}</tbody></table>`}
  </div>`;
}

function Evaluate({ model, tracks }) {
  const [trackId, setTrackId] = useState("reinvent_base");
  const [trials, setTrials] = useState(3);
  const [error, setError] = useState(null);
  const start = async (event) => {
    event.preventDefault();
    setError(null);
    try {
      const job = await post("/api/jobs", { kind: "evaluation", name: `${model.name.slice(0, 57)}-eval`, model_id: model.id, world: { track_id: trackId }, evaluation: { trials: Number(trials) } });
      navigate(`/jobs/${job.id}`);
    } catch (failure) {
      setError(failure);
    }
  };
  const needsConversion = model.weights !== "ready";
  return html`<form class="card" aria-label="Evaluate" onSubmit=${start}>
    <h2>Evaluate</h2>
    <${Field} label="Evaluation track"><select value=${trackId} onChange=${(e) => setTrackId(e.currentTarget.value)}>
      ${tracks.map((t) => html`<option value=${t.track_id}>${t.name}</option>`)}</select></${Field}>
    <${Field} label="Number of trials" hint="1 - 10"><input type="number" min="1" max="10" value=${trials} onInput=${(e) => setTrials(e.currentTarget.value)} /></${Field}>
    ${needsConversion && html`<p class="hint">This model holds TensorFlow weights: convert them first (trackside model convert).</p>`}
    <${ErrorNote} error=${error} />
    <button type="submit" class="primary" disabled=${model.status !== "ready" || needsConversion}>Start evaluation</button>
  </form>`;
}

function Clone({ model, trainingJob }) {
  const [name, setName] = useState(`${model.name}-clone`.slice(0, 63));
  const [error, setError] = useState(null);
  const copy = async () => {
    setError(null);
    try {
      const result = await post(`/api/models/${model.id}/clone`, { name });
      navigate(`/models/${result.model.id}`);
    } catch (failure) {
      setError(failure);
    }
  };
  return html`<section class="card" aria-label="Clone">
    <h2>Clone</h2>
    <${Field} label="Name of the clone"><input value=${name} onInput=${(e) => setName(e.currentTarget.value)} /></${Field}>
    <div class="actions"><button type="button" onClick=${copy}>Clone model</button>
      ${trainingJob && html`<${Link} class="button" href=${`/models/new?clone=${trainingJob.id}`}>Clone and train with a new reward function or hyperparameters</${Link}>`}</div>
    <${ErrorNote} error=${error} />
  </section>`;
}

function Downloads({ model }) {
  const carReady = model.weights === "ready";
  return html`<section class="card" aria-label="Download model">
    <h2>Download model</h2>
    <div class="actions">
      <a class="button" href=${`/api/models/${model.id}/export`} download>Download model folder (.tar.gz)</a>
      ${carReady ? html`<a class="button" href=${`/api/models/${model.id}/car-bundle`} download>Download physical car model</a>`
        : html`<button type="button" disabled title="Convert the TensorFlow weights first">Download physical car model</button>`}
    </div>
    <div class="actions">
      <button type="button" disabled=${!model.model_pb || !carReady} aria-describedby="model-pb-note"
        onClick=${() => { location.href = `/api/models/${model.id}/car-bundle`; }}>Stock car model.pb</button>
      <span id="model-pb-note" class="hint">${model.model_pb
        ? "The physical car bundle includes model.pb for the stock DeepRacer car."
        : "Not available: this server does not have the tensorflow extra installed, so the bundle holds model.onnx for Trackside's car agent only."}</span>
    </div>
  </section>`;
}

export function ModelPage({ modelId }) {
  const model = useFetch(`/api/models/${modelId}`);
  const tracks = useFetch("/api/tracks");
  const jobs = useFetch("/api/jobs");
  const [error, setError] = useState(null);
  const m = model.data;
  if (model.error) return html`<div class="page"><${ErrorNote} error=${model.error} /><${Link} href="/models">Your models</${Link}></div>`;
  if (!m) return html`<div class="page"><p class="loading">Loading model…</p></div>`;
  const allJobs = (jobs.data && jobs.data.jobs) || [];
  const trainingJob = allJobs.find((j) => j.kind === "training" && j.model_id === m.id);
  const evaluations = allJobs.filter((j) => j.kind === "evaluation" && (j.config.model_id === m.id || (trainingJob && j.config.model_job_id === trainingJob.id)));
  const remove = async () => {
    try {
      await del(`/api/models/${m.id}`);
      navigate("/models", { replace: true });
    } catch (failure) {
      setError(failure);
    }
  };
  const meta = m.metadata || {};
  return html`<div class="page workshop model-page">
    <nav class="crumbs" aria-label="Breadcrumb"><${Link} href="/models">Your models</${Link}> › ${m.name}</nav>
    <h1>${m.name}</h1>
    <${ErrorNote} error=${error} />
    ${m.warnings && m.warnings.length > 0 && html`<${Notice}>${m.warnings.length} import warning(s): ${m.warnings.map((w) => w.message).join(" ")}</${Notice}>`}
    <div class="details-grid">
      <section class="card" aria-label="Model details"><h2>Model details</h2><dl>
        <div><dt>Status</dt><dd>${MODEL_STATUS[m.status] || m.status}</dd></div>
        <div><dt>Sensor</dt><dd>${sensorsOf(meta)}</dd></div>
        <div><dt>Neural network</dt><dd>${NETWORKS[meta.neural_network] || meta.neural_network}</dd></div>
        <div><dt>Algorithm</dt><dd>${ALGORITHMS[meta.training_algorithm] || meta.training_algorithm}</dd></div>
        <div><dt>Action space</dt><dd>${actionSummary(meta)}</dd></div>
        <div><dt>Source</dt><dd>${m.source}</dd></div>
        <div><dt>Size</dt><dd>${bytes(m.size_bytes)}</dd></div>
        <div><dt>Created</dt><dd>${shortDate(m.created_at)}</dd></div>
      </dl>
      ${trainingJob && html`<p><${Link} href=${`/jobs/${trainingJob.id}`}>Training and reward graph</${Link}></p>`}</section>
      <${Evaluate} model=${m} tracks=${(tracks.data && tracks.data.tracks) || []} />
    </div>
    ${evaluations.length > 0 && html`<section aria-label="Evaluations"><h2>Evaluations</h2><ul>
      ${evaluations.map((j) => html`<li><${Link} href=${`/jobs/${j.id}`}>Evaluation ${j.id}</${Link}>: ${JOB_STATUS[j.status]}, ${shortDate(j.created_at)}</li>`)}</ul></section>`}
    <div class="details-grid">
      <${Clone} model=${m} trainingJob=${trainingJob} />
      <${Downloads} model=${m} />
    </div>
    <section class="card danger-zone" aria-label="Delete model"><h2>Delete model</h2>
      <p class="hint">Deleting removes the model and its files. A model entered in a race that is still open cannot be deleted.</p>
      <${ConfirmButton} label="Delete model" confirmLabel="Delete model forever" className="danger" question=${`Delete ${m.name}? This cannot be undone.`} onConfirm=${remove} />
    </section>
  </div>`;
}
