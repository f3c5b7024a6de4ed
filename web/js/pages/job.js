// A training or evaluation job, live: the reward graph streamed over /ws/jobs/{id} (no polling),
// elapsed and remaining time, Stop, the failure reason; an evaluation's trials, video and simtrace.
import { html, useEffect, useState } from "../lib.js";
import { get, post } from "../api.js";
import { ErrorNote, Link } from "../ui.js";
import { useTick } from "../hooks.js";
import { FINISHED, JOB_STATUS, duration, openJobFeed } from "../workshop.js";
import { RewardGraph } from "../reward-graph.js";

function useJob(jobId) {
  const [job, setJob] = useState(null);
  const [progress, setProgress] = useState([]);
  const [connection, setConnection] = useState("connecting");
  const [error, setError] = useState(null);
  useEffect(() => {
    const refresh = () => get(`/api/jobs/${jobId}`).then(setJob, setError);
    return openJobFeed(jobId, {
      onHistory: (history) => {
        setJob(history.job);
        setProgress(history.events.filter((e) => e.type === "job.progress"));
      },
      onEvent: (event) => {
        if (event.type === "job.progress") setProgress((list) => [...list, event]);
        // A status change may carry a result or an error the event does not: read the job again.
        if (event.type === "job.status") {
          setJob((j) => (j ? { ...j, status: event.status, error: event.error, stopped_early: event.stopped_early } : j));
          refresh();
        }
      },
      onStatus: (status, reason) => {
        setConnection(status);
        if (status === "refused") setError(new Error(reason || `Job ${jobId} does not exist.`));
      },
    });
  }, [jobId]);
  return { job, progress, connection, error };
}

function Timing({ job }) {
  useTick(1000);
  const started = job.started_at ? Date.parse(job.started_at) : null;
  const end = job.finished_at ? Date.parse(job.finished_at) : Date.now();
  const elapsed = started ? (end - started) / 1000 : 0;
  const limit = job.config.stop && job.config.stop.max_minutes ? job.config.stop.max_minutes * 60 : null;
  const remaining = FINISHED.has(job.status) ? 0 : limit === null ? null : limit - elapsed;
  return html`<dl class="timing">
    <div><dt>Elapsed time</dt><dd data-testid="elapsed">${duration(elapsed)}</dd></div>
    <div><dt>Time remaining</dt><dd>${remaining === null ? "--" : duration(remaining)}</dd></div>
  </dl>`;
}

function Trials({ job }) {
  const trials = (job.result && job.result.trials) || [];
  const count = (t, key) => (t.counts && (t.counts[key] ?? t.counts[`${key}_count`])) ?? 0;
  return html`<table class="trials" aria-label="Evaluation results">
    <thead><tr><th>Trial</th><th>Time</th><th>Trial results (% track completed)</th><th>Status</th><th>Off-track</th><th>Crashes</th><th>Resets</th></tr></thead>
    <tbody>${trials.map((t) => html`<tr>
      <td>${t.trial}</td><td class="time">${t.lap_time === null || t.lap_time === undefined ? "--" : `${Number(t.lap_time).toFixed(3)} s`}</td>
      <td>${Number(t.completion_percentage).toFixed(0)}%</td><td>${t.status}</td>
      <td>${count(t, "off_track")}</td><td>${count(t, "crash")}</td><td>${count(t, "reset")}</td></tr>`)}</tbody></table>`;
}

function EvaluationResult({ job }) {
  if (job.status !== "completed") return null;
  return html`<section aria-label="Evaluation">
    <h2>Evaluation results</h2>
    <${Trials} job=${job} />
    <div class="video eval-video"><video controls muted autoplay playsinline src=${`/api/jobs/${job.id}/video`} aria-label="Evaluation video"></video></div>
    <p class="actions"><a class="button" href=${`/api/jobs/${job.id}/simtrace`} download>Download simtrace</a>
      <a class="button" href=${`/api/jobs/${job.id}/video`} download>Download video</a></p>
  </section>`;
}

export function JobPage({ jobId }) {
  const { job, progress, connection, error } = useJob(jobId);
  const [stopError, setStopError] = useState(null);
  const [stopping, setStopping] = useState(false);
  if (error && !job) return html`<div class="page"><${ErrorNote} error=${error} /><${Link} href="/models">Your models</${Link}></div>`;
  if (!job) return html`<div class="page"><p class="loading">Loading job…</p></div>`;
  const training = job.kind === "training";
  const stop = async () => {
    setStopping(true);
    try {
      await post(`/api/jobs/${job.id}/stop`);
    } catch (failure) {
      setStopError(failure);
    } finally {
      setStopping(false);
    }
  };
  const active = !FINISHED.has(job.status);
  const modelId = job.model_id || job.config.model_id;
  const latest = progress.length ? progress[progress.length - 1] : null;
  return html`<div class="page workshop job-page">
    <nav class="crumbs" aria-label="Breadcrumb"><${Link} href="/models">Your models</${Link}> ›
      ${modelId ? html`<${Link} href=${`/models/${modelId}`}>${training ? job.name : "The model"}</${Link}>` : job.name}</nav>
    <h1>${training ? "Training" : "Evaluation"}: ${job.name}</h1>
    <div class="job-head">
      <p class=${"job-status " + job.status} role="status" data-status=${job.status}>${training ? "Training" : "Evaluation"} status: <strong>${JOB_STATUS[job.status] || job.status}</strong>${job.stopped_early ? " (stopped early: the last checkpoint is kept)" : ""}</p>
      <${Timing} job=${job} />
      ${active && html`<button type="button" class="danger" onClick=${stop} disabled=${stopping || job.status === "stopping"}>${training ? "Stop training" : "Stop evaluation"}</button>`}
    </div>
    ${connection === "reconnecting" && html`<p class="connection" role="status">Connection lost: reconnecting…</p>`}
    ${job.status === "failed" && html`<p class="error" role="alert">${training ? "Training" : "Evaluation"} failed: ${job.error || "no reason was recorded."}</p>`}
    ${job.status === "canceled" && job.error && html`<p class="notice" role="status">${job.error}</p>`}
    <${ErrorNote} error=${stopError} />
    ${training && html`<section aria-label="Training">
      <h2>Reward graph</h2>
      <${RewardGraph} events=${progress} />
      ${latest && html`<p class="hint">Iteration ${latest.iteration}, ${latest.episodes} episodes, ${Number(latest.percent_complete || 0).toFixed(0)}% of the stop condition.</p>`}
      ${job.model_id && html`<p class="actions"><${Link} class="button primary" href=${`/models/${job.model_id}`}>Open the model: evaluate, clone, download</${Link}></p>`}
    </section>`}
    ${!training && html`<${EvaluationResult} job=${job} />`}
  </div>`;
}
