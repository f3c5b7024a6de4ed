// Import model (guide "Import a model"): a folder by drag and drop or the folder picker, or a
// .tar.gz / .zip. Each file's upload progress; every validation error next to its file and field
// with the seed's code and sentence; warnings apart; success opens the model.
import { html, useState } from "../lib.js";
import { ErrorNote, Field, Link, navigate } from "../ui.js";
import { bytes } from "../workshop.js";

// Walks a dropped folder (FileSystemEntry API) into [{file, path}].
async function entriesOf(entry, prefix = "") {
  if (entry.isFile) {
    const file = await new Promise((ok, fail) => entry.file(ok, fail));
    return [{ file, path: prefix + entry.name }];
  }
  const reader = entry.createReader();
  const children = [];
  for (;;) {
    const batch = await new Promise((ok, fail) => reader.readEntries(ok, fail));
    if (!batch.length) break;
    children.push(...batch);
  }
  const nested = await Promise.all(children.map((c) => entriesOf(c, `${prefix}${entry.name}/`)));
  return nested.flat();
}

const ARCHIVE = /\.(tar\.gz|tgz|zip)$/i;
// The store names files from the folder's root: "picked/model/x" is "model/x" there.
const inFolder = (path) => path.split("/").slice(1).join("/") || path;

function send(picked, name, onProgress) {
  return new Promise((resolve, reject) => {
    const xhr = new XMLHttpRequest();
    let body;
    const archive = picked.length === 1 && ARCHIVE.test(picked[0].path);
    if (archive) {
      xhr.open("POST", `/api/models/import?name=${encodeURIComponent(name)}`);
      xhr.setRequestHeader("Content-Type", /\.zip$/i.test(picked[0].path) ? "application/zip" : "application/gzip");
      body = picked[0].file;
    } else {
      xhr.open("POST", "/api/models/import");
      body = new FormData();
      body.append("name", name);
      for (const p of picked) body.append("files", p.file, p.path);
    }
    xhr.responseType = "json";
    xhr.upload.onprogress = (e) => onProgress(e.loaded, e.total);
    xhr.upload.onload = () => onProgress(Infinity, Infinity);
    xhr.onload = () => resolve({ status: xhr.status, data: xhr.response });
    xhr.onerror = () => reject(new Error("The upload failed: the server cannot be reached."));
    xhr.send(body);
  });
}

function ProblemList({ items, label }) {
  return html`<ul class="problems" aria-label=${label}>${items.map((p) => html`<li class=${p.severity === "warning" ? "warning-item" : "field-error"} data-code=${p.code}>
    <code>${p.code}</code> ${p.message}${p.field ? html` <span class="hint">(field <code>${p.field}</code>)</span>` : ""}</li>`)}</ul>`;
}

export function ImportModel() {
  const [picked, setPicked] = useState([]);
  const [name, setName] = useState("");
  const [sent, setSent] = useState(null); // bytes sent, or null before upload
  const [phase, setPhase] = useState("");
  const [result, setResult] = useState(null);
  const [error, setError] = useState(null);
  const [over, setOver] = useState(false);
  const [typed, setTyped] = useState(false); // a name the racer typed survives picking again

  const choose = (list) => {
    const sorted = [...list].sort((a, b) => a.path.localeCompare(b.path));
    setPicked(sorted);
    setResult(null);
    setSent(null);
    setError(null);
    const root = sorted.length ? sorted[0].path.split("/")[0].replace(ARCHIVE, "") : "";
    if (!typed) setName(root.replace(/[^A-Za-z0-9-]/g, "-").slice(0, 63));
  };
  const fromInput = (event) => {
    const files = [...event.currentTarget.files];
    choose(files.map((file) => ({ file, path: file.webkitRelativePath || file.name })));
  };
  const drop = async (event) => {
    event.preventDefault();
    setOver(false);
    const entries = [...event.dataTransfer.items].map((i) => i.webkitGetAsEntry && i.webkitGetAsEntry()).filter(Boolean);
    if (entries.length) choose((await Promise.all(entries.map((e) => entriesOf(e)))).flat());
    else choose([...event.dataTransfer.files].map((file) => ({ file, path: file.name })));
  };
  const upload = async () => {
    setError(null);
    setResult(null);
    setPhase("Uploading");
    setSent(0);
    try {
      const { status, data } = await send(picked, name, (loaded) => {
        setSent(loaded);
        if (loaded === Infinity) setPhase("Validating");
      });
      setPhase("");
      if (status === 201 && data && data.model) {
        navigate(`/models/${data.model.id}`);
        return;
      }
      if (data && (data.errors || data.warnings)) setResult(data);
      else setError(new Error((data && data.error) || `The server answered ${status}.`));
    } catch (failure) {
      setPhase("");
      setError(failure);
    }
  };

  // Which file each problem belongs to; the rest concern the upload as a whole.
  const problems = result ? [...(result.errors || []), ...(result.warnings || [])] : [];
  const archive = picked.length === 1 && ARCHIVE.test(picked[0].path);
  const paths = new Set(picked.map((p) => (archive ? p.path : inFolder(p.path))));
  const general = problems.filter((p) => !p.file || !paths.has(p.file));
  let offset = 0;
  const rows = picked.map((p) => {
    const start = offset;
    offset += p.file.size;
    const done = sent === null ? null : sent === Infinity ? 1 : Math.min(1, Math.max(0, (sent - start) / Math.max(1, p.file.size)));
    const path = archive ? p.path : inFolder(p.path);
    return { path, size: p.file.size, done, errors: problems.filter((x) => x.file === path && x.severity !== "warning"), warnings: problems.filter((x) => x.file === path && x.severity === "warning") };
  });
  const errors = problems.filter((p) => p.severity !== "warning");
  return html`<div class="page workshop import-model">
    <nav class="crumbs" aria-label="Breadcrumb"><${Link} href="/models">Your models</${Link}> › Import model</nav>
    <h1>Import model</h1>
    <p>Choose a model folder (as the DeepRacer console, DeepRacer-for-Cloud or Trackside writes it), or a <code>.tar.gz</code> / <code>.zip</code> of one.</p>
    <div class=${"dropzone" + (over ? " over" : "")} onDragOver=${(e) => { e.preventDefault(); setOver(true); }} onDragLeave=${() => setOver(false)} onDrop=${drop}>
      <p>Drop a model folder or archive here, or</p>
      <label class="button">Choose folder<input type="file" class="visually-hidden" webkitdirectory multiple aria-label="Choose folder" onChange=${fromInput} /></label>
      <label class="button">Choose archive<input type="file" class="visually-hidden" accept=".tar.gz,.tgz,.zip" aria-label="Choose archive" onChange=${fromInput} /></label>
    </div>
    ${picked.length > 0 && html`<section aria-label="Files">
      <${Field} label="Model name" hint="Letters, digits and hyphens."><input value=${name} onInput=${(e) => { setTyped(true); setName(e.currentTarget.value); }} /></${Field}>
      <table class="files-table" aria-label="Files to import">
        <thead><tr><th>File</th><th>Size</th><th>Upload</th><th>Validation</th></tr></thead>
        <tbody>${rows.map((r) => html`<tr key=${r.path} data-file=${r.path} class=${r.errors.length ? "has-errors" : ""}>
          <td><code>${r.path}</code></td><td>${bytes(r.size)}</td>
          <td>${r.done === null ? "" : html`<progress max="1" value=${r.done} aria-label=${`Upload of ${r.path}`}></progress>`}</td>
          <td>${r.errors.length > 0 && html`<${ProblemList} items=${r.errors} label=${`Errors in ${r.path}`} />`}
              ${r.warnings.length > 0 && html`<${ProblemList} items=${r.warnings} label=${`Warnings in ${r.path}`} />`}
              ${result && !r.errors.length && !r.warnings.length ? html`<span class="ok">OK</span>` : ""}</td>
        </tr>`)}</tbody></table>
      ${phase && html`<p role="status" class="notice">${phase}…</p>`}
      ${general.filter((p) => p.severity !== "warning").length > 0 && html`<h3>Errors in the model folder</h3><${ProblemList} items=${general.filter((p) => p.severity !== "warning")} label="Errors in the model folder" />`}
      ${general.filter((p) => p.severity === "warning").length > 0 && html`<h3>Warnings</h3><${ProblemList} items=${general.filter((p) => p.severity === "warning")} label="Warnings" />`}
      ${result && errors.length > 0 && html`<p class="error" role="alert">The model was not imported: ${errors.length} error${errors.length > 1 ? "s" : ""}. Fix the files marked above and import again.</p>`}
      <${ErrorNote} error=${error} />
      <p class="page-actions"><button type="button" class="primary" disabled=${!!phase || !name} onClick=${upload}>Import model</button></p>
    </section>`}
  </div>`;
}
