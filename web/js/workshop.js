// Words and small helpers the model workshop pages share (guide "Your models").

export const SENSORS = {
  FRONT_FACING_CAMERA: "Camera",
  STEREO_CAMERAS: "Stereo camera",
  LIDAR: "LiDAR",
  SECTOR_LIDAR: "Sector LiDAR",
  DISCRETIZED_SECTOR_LIDAR: "Discretized sector LiDAR",
};
export const NETWORKS = {
  DEEP_CONVOLUTIONAL_NETWORK_SHALLOW: "3 layer CNN",
  DEEP_CONVOLUTIONAL_NETWORK: "5 layer CNN",
  DEEP_CONVOLUTIONAL_NETWORK_DEEP: "Deep CNN",
};
export const ALGORITHMS = { clipped_ppo: "PPO", sac: "SAC" };
export const JOB_STATUS = {
  queued: "Queued", initializing: "Initializing", in_progress: "In progress", stopping: "Stopping",
  completed: "Completed", failed: "Failed", canceled: "Stopped",
};
export const FINISHED = new Set(["completed", "failed", "canceled"]);

export function sensorsOf(metadata) {
  const list = (metadata && metadata.sensor) || ["FRONT_FACING_CAMERA"];
  return list.map((s) => SENSORS[s] || s).join(" + ");
}

/** "Discrete, 10 actions" / "Continuous, steering ±30°, speed 0.5-4 m/s". */
export function actionSummary(metadata) {
  if (!metadata) return "";
  const space = metadata.action_space;
  if (metadata.action_space_type === "continuous" || !Array.isArray(space)) {
    const s = space.steering_angle || {};
    const v = space.speed || {};
    return `Continuous: steering ${s.low}° to ${s.high}°, speed ${v.low}-${v.high} m/s`;
  }
  return `Discrete: ${space.length} actions`;
}

export function duration(seconds) {
  if (seconds === null || seconds === undefined || !isFinite(seconds)) return "--";
  const s = Math.max(0, Math.round(seconds));
  const h = Math.floor(s / 3600);
  const m = Math.floor((s % 3600) / 60);
  const pad = (n) => String(n).padStart(2, "0");
  return `${h ? h + ":" : ""}${pad(m)}:${pad(s % 60)}`;
}

export function bytes(n) {
  if (n < 1024) return `${n} B`;
  if (n < 1024 * 1024) return `${(n / 1024).toFixed(1)} KB`;
  return `${(n / 1024 / 1024).toFixed(1)} MB`;
}

/** A job's live feed over /ws/jobs/{id}: history first, then each event; reconnects by itself. */
export function openJobFeed(jobId, { onHistory, onEvent, onStatus }) {
  let socket = null;
  let closed = false;
  let delay = 500;
  const connect = () => {
    const scheme = location.protocol === "https:" ? "wss" : "ws";
    socket = new WebSocket(`${scheme}://${location.host}/ws/jobs/${jobId}`);
    socket.onopen = () => { delay = 500; onStatus && onStatus("live"); };
    socket.onmessage = (message) => {
      const event = JSON.parse(message.data);
      if (event.type === "history") onHistory(event);
      else onEvent(event);
    };
    socket.onclose = (event) => {
      if (closed) return;
      if (event.code === 4403 || event.code === 4401) {
        onStatus && onStatus("refused", event.reason);
        return;
      }
      onStatus && onStatus("reconnecting");
      setTimeout(connect, delay);
      delay = Math.min(delay * 2, 5000);
    };
  };
  connect();
  return () => {
    closed = true;
    if (socket) socket.close();
  };
}
