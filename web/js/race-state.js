// A race's live state on the page, built from the snapshot and then each event (a pure reducer).

export const initialRaceState = {
  connection: { state: "connecting" },
  race: null,
  simulator: { status: "not_created", stage: null, reason: null },
  entriesOpen: true,
  queue: { version: 0, entries: [] },
  settings: { countdown_s: 10, time_per_racer_s: 180, replay_s: 15 },
  run: null,
  upNext: null,
  winner: null,
  leaderboard: [],
  telemetry: null,
  confirmedSpeed: {},
  lastLap: null,
  lastFailure: null,
  lastEdit: null,
};

const now = () => Date.now();

function runFromSnapshot(run) {
  if (!run) return null;
  const t = now();
  const goAt = t + run.countdown_remaining_s * 1000;
  const endsAt = goAt + run.time_remaining_s * 1000;
  return {
    run_id: run.run_id,
    racer_id: run.racer_id,
    phase: run.phase,
    countdown: Math.ceil(run.countdown_remaining_s),
    goAt,
    endsAt,
    replayEndsAt: endsAt + run.replay_remaining_s * 1000,
  };
}

export function reduceRace(state, msg) {
  switch (msg.type) {
    case "_connection":
      return { ...state, connection: msg.status };
    case "snapshot": {
      const q = msg.queue || {};
      return {
        ...state,
        race: msg.race,
        simulator: { status: q.simulator || "not_created", stage: q.stage || null, reason: null },
        entriesOpen: q.entries_open ?? true,
        queue: { version: q.version || 0, entries: q.entries || [] },
        settings: q.settings || state.settings,
        run: runFromSnapshot(q.run),
        winner: q.winner ?? null,
        leaderboard: msg.leaderboard || [],
      };
    }
    case "simulator":
      return { ...state, simulator: { status: msg.status, stage: msg.stage ?? null, reason: msg.reason ?? null } };
    case "entries":
      return { ...state, entriesOpen: msg.open };
    case "queue":
      return { ...state, queue: { version: msg.version, entries: msg.entries } };
    case "queue_edit":
      return { ...state, lastEdit: msg };
    case "run_launched": {
      const goAt = now() + msg.countdown_s * 1000;
      return {
        ...state,
        settings: { ...state.settings, countdown_s: msg.countdown_s, time_per_racer_s: msg.slot_s },
        run: { run_id: msg.run_id, racer_id: msg.racer_id, phase: "countdown", countdown: msg.countdown_s, goAt,
               endsAt: goAt + msg.slot_s * 1000, replayEndsAt: null },
        telemetry: null,
        lastFailure: null,
        confirmedSpeed: { ...state.confirmedSpeed, [msg.racer_id]: 1 },
      };
    }
    case "countdown":
      if (!state.run || state.run.run_id !== msg.run_id) return state;
      return { ...state, run: { ...state.run, countdown: msg.value, goAt: now() + msg.value * 1000 } };
    case "run_started": {
      const base = state.run && state.run.run_id === msg.run_id ? state.run : { run_id: msg.run_id, racer_id: msg.racer_id };
      return { ...state, run: { ...base, phase: "running", countdown: 0, goAt: now(), endsAt: now() + msg.slot_s * 1000 } };
    }
    case "checkered": {
      const base = state.run && state.run.run_id === msg.run_id ? state.run : { run_id: msg.run_id, racer_id: msg.racer_id };
      return { ...state, run: { ...base, phase: "replay", endsAt: now(), replayEndsAt: now() + msg.replay_s * 1000 } };
    }
    case "run_failed":
      return { ...state, run: null, lastFailure: { racer_id: msg.racer_id, reason: msg.reason } };
    case "replay_ended":
      return state.run && state.run.run_id === msg.run_id ? { ...state, run: null } : state;
    case "up_next":
      return { ...state, upNext: msg.racer_id };
    case "leaderboard_cleared":
      return { ...state, leaderboard: [] };
    case "winner_declared":
      return { ...state, winner: msg.racer_id, run: null };
    case "lap":
      return { ...state, lastLap: msg };
    case "telemetry": {
      let run = state.run;
      if (run && run.run_id === msg.run_id && run.phase === "running") {
        run = { ...run, endsAt: now() + msg.time_remaining_ms };
      }
      return { ...state, telemetry: msg, run };
    }
    case "leaderboard":
      return { ...state, leaderboard: msg.rows };
    case "speed":
      return { ...state, confirmedSpeed: { ...state.confirmedSpeed, [msg.racer_id]: msg.multiplier } };
    default:
      // sector, penalty, attempt_ended: shown through telemetry and laps.
      return state;
  }
}

// Seconds until each queue row is launched (COMING UP), from the race's own slot settings.
export function comingUp(state) {
  const s = state.settings;
  const perRacer = s.countdown_s + s.time_per_racer_s + s.replay_s;
  let wait = 0;
  const run = state.run;
  if (run) {
    const end = run.phase === "replay" ? run.replayEndsAt : run.endsAt + s.replay_s * 1000;
    wait = Math.max(0, ((end || now()) - now()) / 1000);
  }
  return state.queue.entries.map((entry, index) => ({ entry, etaS: wait + index * perRacer }));
}

export function remainingS(run) {
  if (!run) return null;
  if (run.phase === "countdown") return Math.max(0, (run.endsAt - now()) / 1000);
  if (run.phase === "running") return Math.max(0, (run.endsAt - now()) / 1000);
  return 0;
}
