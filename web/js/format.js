// Times, dates and the race wording of the guide (race cards, details, rules).

export function lapTime(ms) {
  if (ms === null || ms === undefined || !Number.isFinite(Number(ms))) return "--:--.---";
  const t = Math.max(0, Math.round(Number(ms)));
  const m = Math.floor(t / 60000);
  const s = (t % 60000) / 1000;
  return `${String(m).padStart(2, "0")}:${s.toFixed(3).padStart(6, "0")}`;
}

export const gap = (ms) => (ms ? `+${lapTime(ms)}` : "—");

export function clock(seconds) {
  const t = Math.max(0, Math.ceil(seconds));
  return `${Math.floor(t / 60)}:${String(t % 60).padStart(2, "0")}`;
}

export function dateTime(iso, timeZone) {
  const opts = { dateStyle: "medium", timeStyle: "short" };
  if (timeZone) opts.timeZone = timeZone;
  try {
    return new Intl.DateTimeFormat(undefined, opts).format(new Date(iso));
  } catch {
    return new Date(iso).toLocaleString();
  }
}

export const shortDate = (iso) => new Intl.DateTimeFormat(undefined, { month: "long", day: "numeric" }).format(new Date(iso));
export const timeOfDay = (date) => new Intl.DateTimeFormat(undefined, { timeStyle: "short" }).format(date);

export const RACE_TYPES = { time_trial: "Time trial", object_avoidance: "Object avoidance", head_to_bot: "Head-to-bot" };
export const RANKING = { best_lap: "Best lap time", average: "Average time", total_time: "Total time" };
export const FORMATS = { live: "LIVE race", classic: "Classic race" };
export const STATUS = { open: "Open", opening_soon: "Opening soon", closed: "Closed" };

function plural(n, word) {
  return `${n} ${word}${n === 1 ? "" : "s"}`;
}

// The race card's headline: "6 hours to LIVE race", "23 days remaining!", "Opening soon ...".
export function cardHeadline(race, now = Date.now()) {
  const start = Date.parse(race.config.start);
  const end = Date.parse(race.config.end);
  if (race.status === "closed") return "Race closed";
  if (race.format === "live") {
    if (now >= start) return "LIVE";
    const hours = (start - now) / 3_600_000;
    if (hours < 1) return `${plural(Math.max(1, Math.ceil(hours * 60)), "minute")} to LIVE race`;
    if (hours < 24) return `${plural(Math.floor(hours), "hour")} to LIVE race`;
    return `${plural(Math.floor(hours / 24), "day")} to LIVE race`;
  }
  if (now < start) return "Opening soon ...";
  const days = Math.ceil((end - now) / 86_400_000);
  return days <= 1 ? "Last day!" : `${days} days remaining!`;
}

export function raceWhen(race) {
  const c = race.config;
  if (race.format === "live") return `LIVE race ${dateTime(c.start, c.time_zone)}`;
  return `${shortDate(c.start)} - ${shortDate(c.end)}`;
}

export function rules(config) {
  const out = [];
  if (config.format === "classic") out.push(["Ranking method", RANKING[config.ranking] || config.ranking]);
  else out.push(["Ranking method", "Best lap time"]);
  out.push(["Style", "Individual lap"]);
  const laps = config.min_consecutive_laps;
  out.push(["Entry criteria", `${laps} consecutive lap${laps === 1 ? "" : "s"}`]);
  out.push(["Resets", config.resets === "none" ? "No resets" : "Unlimited resets"]);
  out.push(["Off-track penalty", `${config.off_track_penalty_s} seconds`]);
  if (config.format === "live") out.push(["Time per racer", plural(config.time_per_racer_min, "minute")]);
  const oa = config.object_avoidance;
  if (oa) {
    out.push(["Number of obstacles", oa.randomize ? `${oa.count} (random)` : String(oa.count)]);
    out.push(["Collision penalty", `${config.collision_penalty_s} seconds`]);
  }
  const hb = config.head_to_bot;
  if (hb) {
    out.push(["Number of bot cars", String(hb.bots)]);
    out.push(["Bot car speed", `${hb.speed_mps} m/s`]);
    out.push(["Bot lane change", hb.lane_change ? `Enabled (${hb.min_lane_change_s}-${hb.max_lane_change_s} s)` : "Disabled"]);
    out.push(["Collision penalty", `${config.collision_penalty_s} seconds`]);
  }
  return out;
}
