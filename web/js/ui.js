// Generic pieces: links that route in-page, errors in plain words, confirm-before-acting buttons, copy fields.
import { html, useEffect, useRef, useState } from "./lib.js";

const listeners = new Set();
export function navigate(path, { replace = false } = {}) {
  if (replace) history.replaceState(null, "", path);
  else history.pushState(null, "", path);
  window.scrollTo(0, 0);
  listeners.forEach((fn) => fn());
}
export function onNavigate(fn) {
  listeners.add(fn);
  window.addEventListener("popstate", fn);
  return () => {
    listeners.delete(fn);
    window.removeEventListener("popstate", fn);
  };
}

export function Link({ href, children, ...rest }) {
  const click = (event) => {
    if (event.defaultPrevented || event.button !== 0 || event.metaKey || event.ctrlKey || event.shiftKey) return;
    event.preventDefault();
    navigate(href);
  };
  return html`<a href=${href} onClick=${click} ...${rest}>${children}</a>`;
}

export function ErrorNote({ error }) {
  if (!error) return null;
  return html`<p class="error" role="alert">${error.message || String(error)}</p>`;
}

export function Notice({ children }) {
  return html`<p class="notice" role="status">${children}</p>`;
}

/** A button that asks once more before doing something that cannot be undone. */
export function ConfirmButton({ label, confirmLabel, question, onConfirm, disabled, className = "" }) {
  const [asking, setAsking] = useState(false);
  const [busy, setBusy] = useState(false);
  const yesRef = useRef(null);
  // Keyboard users land on the question's answer, not at the top of the page.
  useEffect(() => {
    if (asking && yesRef.current) yesRef.current.focus();
  }, [asking]);
  if (!asking) {
    return html`<button type="button" class=${className} disabled=${disabled} onClick=${() => setAsking(true)}>${label}</button>`;
  }
  const yes = async () => {
    setBusy(true);
    try {
      await onConfirm();
    } finally {
      setBusy(false);
      setAsking(false);
    }
  };
  return html`<span class="confirm" role="group" aria-label=${question}>
    <span>${question}</span>
    <button type="button" class="danger" ref=${yesRef} disabled=${busy} onClick=${yes}>${confirmLabel}</button>
    <button type="button" onClick=${() => setAsking(false)}>Cancel</button>
  </span>`;
}

/** A read-only value with a Copy button (the clipboard, or selecting the text where it is not allowed). */
export function CopyField({ label, value, multiline = false, buttonLabel = "Copy", buttonText = buttonLabel }) {
  const [copied, setCopied] = useState("");
  const copy = async (event) => {
    const field = event.currentTarget.parentElement.querySelector("input, textarea");
    try {
      await navigator.clipboard.writeText(value);
      setCopied("Copied");
    } catch {
      field.select();
      setCopied("Selected: press Ctrl+C to copy");
    }
    setTimeout(() => setCopied(""), 2500);
  };
  const field = multiline
    ? html`<textarea readonly rows="6" aria-label=${label} value=${value}></textarea>`
    : html`<input readonly aria-label=${label} value=${value} />`;
  return html`<div class="copy-field">
    ${field}
    <button type="button" onClick=${copy} aria-label=${buttonLabel}>${buttonText}</button>
    <span role="status" class="copied">${copied}</span>
  </div>`;
}

export function Field({ label, hint, error, children }) {
  // The hint and error stay outside the <label> so the control's accessible name is the label alone.
  return html`<div class="field"><label><span class="label">${label}</span>${children}</label>
    ${hint && html`<span class="hint">${hint}</span>`}${error && html`<span class="field-error" role="alert">${error}</span>`}</div>`;
}
