// The reward function editor: CodeMirror 6 (vendored bundle) with Python highlighting, the guide's
// four example functions to start from, and Validate (POST /api/reward/validate) marking each
// problem at its line.
import { html, useEffect, useRef, useState } from "./lib.js";
import { EditorState, EditorView, basicSetup, lintGutter, oneDark, python, setDiagnostics } from "../vendor/codemirror.mjs";
import { ApiError } from "./api.js";

// The guide's examples ("Examples of the AWS DeepRacer reward function"), rewritten in its spirit.
export const EXAMPLES = {
  "Follow the center line": `def reward_function(params):
    """Reward staying close to the center line."""
    track_width = params['track_width']
    distance_from_center = params['distance_from_center']

    # Three bands, increasingly far from the center line
    if distance_from_center <= 0.1 * track_width:
        reward = 1.0
    elif distance_from_center <= 0.25 * track_width:
        reward = 0.5
    elif distance_from_center <= 0.5 * track_width:
        reward = 0.1
    else:
        reward = 1e-3  # likely crashed or close to off track

    return float(reward)
`,
  "Stay inside the two borders": `def reward_function(params):
    """Reward keeping every wheel between the borders."""
    all_wheels_on_track = params['all_wheels_on_track']
    distance_from_center = params['distance_from_center']
    track_width = params['track_width']

    reward = 1e-3
    if all_wheels_on_track and (0.5 * track_width - distance_from_center) >= 0.05:
        reward = 1.0

    return float(reward)
`,
  "Prevent zig-zag": `def reward_function(params):
    """Follow the center line, with less reward for steering hard."""
    distance_from_center = params['distance_from_center']
    track_width = params['track_width']
    abs_steering = abs(params['steering_angle'])

    if distance_from_center <= 0.1 * track_width:
        reward = 1.0
    elif distance_from_center <= 0.25 * track_width:
        reward = 0.5
    elif distance_from_center <= 0.5 * track_width:
        reward = 0.1
    else:
        reward = 1e-3

    # Change the threshold to suit your action space
    ABS_STEERING_THRESHOLD = 15
    if abs_steering > ABS_STEERING_THRESHOLD:
        reward *= 0.8

    return float(reward)
`,
  "Object avoidance and head-to-bot": `import math


def reward_function(params):
    """Stay inside the borders; keep away from the next object in your lane."""
    all_wheels_on_track = params['all_wheels_on_track']
    distance_from_center = params['distance_from_center']
    track_width = params['track_width']
    objects_location = params['objects_location']
    _, next_object_index = params['closest_objects']
    objects_left_of_center = params['objects_left_of_center']
    is_left_of_center = params['is_left_of_center']

    reward_lane = 1e-3
    if all_wheels_on_track and (0.5 * track_width - distance_from_center) >= 0.05:
        reward_lane = 1.0

    reward_avoid = 1.0
    if objects_location:
        next_object = objects_location[next_object_index]
        distance = math.hypot(params['x'] - next_object[0], params['y'] - next_object[1])
        if objects_left_of_center[next_object_index] == is_left_of_center:
            if 0.5 <= distance < 0.8:
                reward_avoid *= 0.5
            elif 0.3 <= distance < 0.5:
                reward_avoid *= 0.2
            elif distance < 0.3:
                reward_avoid = 1e-3  # likely crashed

    return float(1e-3 + 1.0 * reward_lane + 4.0 * reward_avoid)
`,
};

const THEME = EditorView.theme(
  {
    "&": { color: "#e8ebf1", backgroundColor: "#0c0f15", maxHeight: "28rem", fontSize: "14px" },
    ".cm-scroller": { fontFamily: 'ui-monospace, "SFMono-Regular", Menlo, monospace' },
    ".cm-content": { caretColor: "#fff" },
    ".cm-cursor, .cm-dropCursor": { borderLeftColor: "#fff" },
    ".cm-gutters": { backgroundColor: "#10141b", color: "#9aa3b5", borderRight: "1px solid #2c3342" },
    ".cm-activeLine, .cm-activeLineGutter": { backgroundColor: "#161b25" },
    "&.cm-focused .cm-selectionBackground, .cm-selectionBackground, ::selection": { backgroundColor: "#33407a" },
    ".cm-tooltip": { backgroundColor: "#1f2430", color: "#e8ebf1", border: "1px solid #2c3342" },
  },
  { dark: true },
);

async function validateSource(source, world) {
  const response = await fetch("/api/reward/validate", {
    method: "POST",
    credentials: "same-origin",
    headers: { "Content-Type": "application/json" },
    body: JSON.stringify({ reward_function: source, track_id: world.track_id, direction: world.direction || null }),
  });
  const data = await response.json().catch(() => null);
  if (response.ok) return [];
  if (response.status === 422 && data && Array.isArray(data.errors)) return data.errors;
  throw new ApiError(response.status, data && data.code, (data && data.error) || `The server answered ${response.status}.`);
}

/** `value` is the starting text, `onChange` hears every edit, `replaceWith` ({text}, a new object
 * each time) loads other text; `world` is what Validate tests against. */
export function RewardEditor({ value, replaceWith, onChange, world, onValidated }) {
  const [picked, setPicked] = useState(null);
  const host = useRef(null);
  const view = useRef(null);
  const changed = useRef(onChange);
  changed.current = onChange;
  const [problems, setProblems] = useState(null);
  const [busy, setBusy] = useState(false);
  const [error, setError] = useState(null);

  useEffect(() => {
    // In a shadow root CodeMirror's styles go into a constructed style sheet; in the document it
    // would add a <style> element, which the Content-Security-Policy refuses.
    const shadow = host.current.shadowRoot || host.current.attachShadow({ mode: "open" });
    const parent = document.createElement("div");
    shadow.replaceChildren(parent);
    view.current = new EditorView({
      root: shadow,
      parent,
      state: EditorState.create({
        doc: value,
        extensions: [
          basicSetup,
          python(),
          lintGutter(),
          oneDark,
          THEME,
          EditorView.contentAttributes.of({ "aria-label": "Reward function" }),
          EditorView.updateListener.of((update) => update.docChanged && changed.current(update.state.doc.toString())),
        ],
      }),
    });
    return () => view.current.destroy();
  }, []);
  // The editor owns the text; only a new starting point (an example, a clone's function) replaces it.
  useEffect(() => {
    const next = picked || replaceWith;
    if (!next) return;
    const current = view.current.state.doc.toString();
    if (current !== next.text) view.current.dispatch({ changes: { from: 0, to: current.length, insert: next.text } });
  }, [picked, replaceWith]);

  const mark = (found) => {
    const doc = view.current.state.doc;
    const diagnostics = found.map((p) => {
      const line = doc.line(Math.min(Math.max(p.line || 1, 1), doc.lines));
      return { from: line.from, to: line.to, severity: "error", message: `${p.code}: ${p.message}` };
    });
    view.current.dispatch(setDiagnostics(view.current.state, diagnostics));
  };
  const validate = async () => {
    setBusy(true);
    setError(null);
    try {
      const found = await validateSource(view.current.state.doc.toString(), world);
      setProblems(found);
      mark(found);
      onValidated && onValidated(found.length === 0);
    } catch (failure) {
      setError(failure);
    } finally {
      setBusy(false);
    }
  };
  const pick = (event) => {
    const name = event.currentTarget.value;
    if (name && EXAMPLES[name]) setPicked({ text: EXAMPLES[name] });
    event.currentTarget.value = "";
  };
  return html`<div class="reward-editor">
    <div class="actions">
      <label class="field inline"><span class="label">Reward function examples</span>
        <select aria-label="Reward function examples" onChange=${pick}>
          <option value="">Start from an example…</option>
          ${Object.keys(EXAMPLES).map((name) => html`<option value=${name}>${name}</option>`)}
        </select></label>
      <button type="button" onClick=${validate} disabled=${busy}>${busy ? "Validating…" : "Validate"}</button>
    </div>
    <div class="code" ref=${host}></div>
    ${error && html`<p class="error" role="alert">${error.message}</p>`}
    ${problems && problems.length === 0 && html`<p class="notice" role="status">Passed validation.</p>`}
    ${problems && problems.length > 0 && html`<ul class="reward-problems" aria-label="Reward function problems">
      ${problems.map((p) => html`<li class="field-error" data-code=${p.code} data-line=${p.line || ""}>
        ${p.line ? html`<strong>Line ${p.line}</strong>: ` : ""}<code>${p.code}</code> ${p.message}</li>`)}
    </ul>`}
  </div>`;
}
