// The organizer's racer queue under COMING UP (guide "Run a LIVE race", steps 3, 6, 11-13): red rows
// for models that could not be loaded, Edit → drag and drop (or Move up/down) and remove → Save / Cancel,
// Launch for the top racer and Relaunch for a failed run.
import { html, useEffect, useRef, useState } from "./lib.js";
import Sortable from "../vendor/sortable.mjs";
import { timeOfDay } from "./format.js";
import { comingUp } from "./race-state.js";

export function QueueEditor({ state, socketRef, name, onError }) {
  const [draft, setDraft] = useState(null); // {version, order: [racer ids]} while editing
  const listRef = useRef(null);
  const entries = state.queue.entries;
  const byRacer = new Map(entries.map((e) => [e.racer_id, e]));
  const rows = comingUp(state);
  const eta = new Map(rows.map(({ entry, etaS }) => [entry.racer_id, etaS]));
  const order = draft ? draft.order.filter((id) => byRacer.has(id)) : entries.map((e) => e.racer_id);

  const command = async (type, fields = {}) => {
    try {
      await socketRef.current.command(type, fields);
      onError(null);
      return true;
    } catch (error) {
      onError(error);
      return false;
    }
  };

  useEffect(() => {
    if (!draft || !listRef.current) return undefined;
    const sortable = Sortable.create(listRef.current, {
      handle: ".drag",
      animation: 120,
      forceFallback: true, // mouse-event dragging: works the same in every browser and under test
      onEnd: (event) => {
        // Give the DOM back to Preact: undo Sortable's move, then re-render from the new order.
        const { item, from, oldIndex, newIndex } = event;
        if (oldIndex === newIndex) return;
        from.removeChild(item);
        from.insertBefore(item, from.children[oldIndex] || null);
        setDraft((d) => {
          const next = d.order.filter((id) => byRacer.has(id));
          const [moved] = next.splice(oldIndex, 1);
          next.splice(newIndex, 0, moved);
          return { ...d, order: next };
        });
      },
    });
    return () => sortable.destroy();
  }, [Boolean(draft), entries]);

  const edit = async () => {
    if (await command("begin_queue_edit")) setDraft({ version: state.queue.version, order: entries.map((e) => e.racer_id) });
  };
  const cancel = async () => {
    await command("cancel_queue_edit");
    setDraft(null);
  };
  const save = async () => {
    if (await command("save_queue", { order, version: draft.version })) setDraft(null);
  };
  const move = (index, by) =>
    setDraft((d) => {
      const next = [...order];
      const [moved] = next.splice(index, 1);
      next.splice(Math.max(0, Math.min(next.length, index + by)), 0, moved);
      return { ...d, order: next };
    });
  const remove = (racerId) => setDraft((d) => ({ ...d, order: order.filter((id) => id !== racerId) }));

  // Launching needs the simulator up and nobody on track (a replay may be cut short).
  const busy = Boolean(state.run && state.run.phase !== "replay") || state.simulator.status !== "running";
  return html`<div class="queue-editor">
    <div class="queue-actions">
      ${draft
        ? html`<button type="button" class="primary" onClick=${save}>Save</button>
               <button type="button" onClick=${cancel}>Cancel</button>
               <span class="hint">Drag racers by ⠿ to reorder, or use the arrows.</span>`
        : html`<button type="button" disabled=${state.entriesOpen || entries.length === 0} onClick=${edit}>Edit</button>`}
      ${!draft && !state.entriesOpen && entries.length > 0 && state.simulator.status !== "running" &&
        html`<span class="hint">Racers can be launched once the simulator is running.</span>`}
    </div>
    ${order.length === 0
      ? html`<p class="empty">${state.entriesOpen ? "Turn off Model entries open to build the racer queue." : "The queue is empty."}</p>`
      : html`<ol class="queue" ref=${listRef} aria-label="Racer queue">
        ${order.map((racerId, index) => {
          const entry = byRacer.get(racerId);
          const who = name(racerId);
          return html`<li key=${racerId} data-racer=${racerId} class=${entry.red ? "red" : entry.relaunch ? "relaunch" : ""}>
            ${draft && html`<span class="drag" aria-hidden="true" title="Drag to reorder">⠿</span>`}
            <span class="who">${who}</span>
            <span class="status">${entry.red
              ? `Model not loaded: ${entry.error || "unknown error"}`
              : entry.relaunch ? "Run failed: relaunch" : index === 0 && !busy ? "Up next" : timeOfDay(new Date(Date.now() + (eta.get(racerId) || 0) * 1000))}</span>
            ${draft
              ? html`<span class="row-actions">
                  <button type="button" aria-label=${`Move ${who} up`} disabled=${index === 0} onClick=${() => move(index, -1)}>↑</button>
                  <button type="button" aria-label=${`Move ${who} down`} disabled=${index === order.length - 1} onClick=${() => move(index, 1)}>↓</button>
                  <button type="button" aria-label=${`Remove ${who}`} onClick=${() => remove(racerId)}>✕</button>
                </span>`
              : html`<span class="row-actions">
                  ${entry.relaunch
                    ? html`<button type="button" class="primary" aria-label=${`Relaunch ${who}`} disabled=${busy}
                        onClick=${() => command("relaunch_racer", { racer_id: racerId })}>Relaunch</button>`
                    : index === 0 && html`<button type="button" class="primary" aria-label=${`Launch ${who}`}
                        disabled=${busy || entry.red} onClick=${() => command("launch_racer", { racer_id: racerId })}>Launch</button>`}
                </span>`}
          </li>`;
        })}
      </ol>`}
  </div>`;
}
