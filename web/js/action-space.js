// The action space editor (guide "Action space"): discrete rows or continuous bounds, drawn as the
// steering/speed fan the console shows, with the car's limits enforced in plain words.
import { html } from "./lib.js";

export const STEERING = [-30, 30]; // degrees, left positive
export const SPEED = [0.1, 4]; // m/s
export const MAX_ACTIONS = 30;

export const defaultDiscrete = () =>
  [-30, -15, 0, 15, 30].flatMap((s) => [0.5, 1].map((v) => ({ steering_angle: s, speed: v })));
export const defaultContinuous = () => ({ steering_angle: { low: -30, high: 30 }, speed: { low: 0.5, high: 1 } });

/** Every reason the action space cannot be used; empty when it can. */
export function actionSpaceProblems(type, space) {
  const problems = [];
  const inRange = (value, [low, high]) => typeof value === "number" && isFinite(value) && value >= low && value <= high;
  if (type === "discrete") {
    if (space.length < 1) problems.push("Add at least one action.");
    if (space.length > MAX_ACTIONS) problems.push(`At most ${MAX_ACTIONS} actions: the console's limit.`);
    space.forEach((a, i) => {
      if (!inRange(a.steering_angle, STEERING)) problems.push(`Action ${i}: steering angle must be between -30 and 30 degrees.`);
      if (!inRange(a.speed, SPEED)) problems.push(`Action ${i}: speed must be between 0.1 and 4 m/s.`);
    });
    const seen = new Set(space.map((a) => `${a.steering_angle}/${a.speed}`));
    if (seen.size !== space.length) problems.push("Two actions are the same: each action must differ.");
  } else {
    const s = space.steering_angle;
    const v = space.speed;
    if (!inRange(s.low, STEERING) || !inRange(s.high, STEERING)) problems.push("Steering angle bounds must be between -30 and 30 degrees.");
    else if (s.low >= s.high) problems.push("The steering angle's minimum must be below its maximum.");
    if (!inRange(v.low, SPEED) || !inRange(v.high, SPEED)) problems.push("Speed bounds must be between 0.1 and 4 m/s.");
    else if (v.low >= v.high) problems.push("The minimum speed must be below the maximum speed.");
  }
  return problems;
}

// The fan: the car at the bottom centre, steering as the angle (left is left), speed as the length.
function Fan({ type, space }) {
  const cx = 150, cy = 150, r = 130;
  // Scaled to the fastest action, as the console draws it, so slow spaces do not collapse to a dot.
  const speeds = type === "discrete" ? space.map((a) => a.speed) : [space.speed.high];
  const top = Math.min(SPEED[1], Math.max(0.5, ...speeds.filter((v) => isFinite(v))));
  const point = (angle, speed) => {
    const rad = ((90 + (isFinite(angle) ? angle : 0)) * Math.PI) / 180;
    const len = (Math.min(Math.max(isFinite(speed) ? speed : 0, 0), top) / top) * r;
    return [cx + Math.cos(rad) * len, cy - Math.sin(rad) * len];
  };
  const grid = [0.25, 0.5, 0.75, 1].map((f) => html`<circle class="fan-grid" cx=${cx} cy=${cy} r=${f * r} />`);
  const scale = html`<text class="fan-label fan-scale" x="296" y="14">outer ring ${top} m/s</text>`;
  let body;
  if (type === "discrete") {
    body = space.map((a, i) => {
      const [x, y] = point(a.steering_angle, a.speed);
      return html`<g><line class="fan-ray" x1=${cx} y1=${cy} x2=${x} y2=${y} /><circle class="fan-dot" cx=${x} cy=${y} r="5" /><text class="fan-label" x=${x} y=${y - 8}>${i}</text></g>`;
    });
  } else {
    const s = space.steering_angle, v = space.speed;
    const steps = 24;
    const outer = [], inner = [];
    for (let k = 0; k <= steps; k++) {
      const angle = s.low + ((s.high - s.low) * k) / steps;
      outer.push(point(angle, v.high));
      inner.unshift(point(angle, v.low));
    }
    const d = [...outer, ...inner].map(([x, y], k) => `${k ? "L" : "M"}${x.toFixed(1)},${y.toFixed(1)}`).join(" ") + " Z";
    body = html`<path class="fan-area" d=${d} />`;
  }
  return html`<svg class="fan" viewBox="0 0 300 160" role="img" aria-label="Action space: steering angle and speed">
    ${grid}${scale}<line class="fan-axis" x1=${cx} y1=${cy} x2=${cx} y2="10" />${body}
    <text class="fan-label" x="8" y="155">left</text><text class="fan-label" x="270" y="155">right</text>
  </svg>`;
}

const num = (event) => (event.currentTarget.value === "" ? NaN : Number(event.currentTarget.value));

export function ActionSpaceEditor({ type, space, onChange }) {
  const problems = actionSpaceProblems(type, space);
  let editor;
  if (type === "discrete") {
    const set = (i, key, value) => onChange(space.map((a, k) => (k === i ? { ...a, [key]: value } : a)));
    editor = html`<table class="actions-table" aria-label="Actions">
      <thead><tr><th>Action</th><th>Steering angle (°)</th><th>Speed (m/s)</th><th></th></tr></thead>
      <tbody>${space.map((a, i) => html`<tr key=${i}>
        <td>${i}</td>
        <td><input type="number" step="1" min="-30" max="30" aria-label=${`Action ${i} steering angle`} value=${a.steering_angle} onInput=${(e) => set(i, "steering_angle", num(e))} /></td>
        <td><input type="number" step="0.1" min="0.1" max="4" aria-label=${`Action ${i} speed`} value=${a.speed} onInput=${(e) => set(i, "speed", num(e))} /></td>
        <td><button type="button" aria-label=${`Remove action ${i}`} onClick=${() => onChange(space.filter((_, k) => k !== i))}>Remove</button></td>
      </tr>`)}</tbody></table>
      <button type="button" disabled=${space.length >= MAX_ACTIONS} onClick=${() => onChange([...space, { steering_angle: 0, speed: 1 }])}>Add an action</button>`;
  } else {
    const set = (key, end, value) => onChange({ ...space, [key]: { ...space[key], [end]: value } });
    const bound = (key, end, label, unit, step) => html`<label class="field inline"><span class="label">${label}</span>
      <input type="number" step=${step} aria-label=${label} value=${space[key][end]} onInput=${(e) => set(key, end, num(e))} /> ${unit}</label>`;
    editor = html`<div class="bounds">
      ${bound("steering_angle", "low", "Minimum steering angle", "°", 1)}${bound("steering_angle", "high", "Maximum steering angle", "°", 1)}
      ${bound("speed", "low", "Minimum speed", "m/s", 0.1)}${bound("speed", "high", "Maximum speed", "m/s", 0.1)}</div>`;
  }
  return html`<div class="action-space">
    <div class="action-editor">${editor}</div>
    <${Fan} type=${type} space=${space} />
    ${problems.length > 0 && html`<ul class="action-problems">${problems.map((p) => html`<li class="field-error" role="alert">${p}</li>`)}</ul>`}
  </div>`;
}
