// The race video (WHEP) with a clear state: connecting, playing, or unavailable. Retries by itself
// when the stream drops (server restart, network blip) so broadcast mode resumes unattended.
import { html, useEffect, useRef, useState } from "./lib.js";
import { VideoUnavailable, playWhep, whepUrl } from "./whep.js";

// The server gives a disconnected viewer 5 s (race_server/stream/whep.py); the page waits a little less.
const DISCONNECT_GRACE_MS = 4000;

export const CAMERA_VIEWS = [
  ["chase", "Chase camera"],
  ["tv", "TV camera"],
  ["topdown", "Top-down track view"],
];

// `running`: the race's simulator is up. Its video starts with it, so a page that found none looks
// again at once instead of waiting for its next retry.
export function RaceVideo({ raceId, viewer = null, running = true, children, retryMs = 5000 }) {
  const videoRef = useRef(null);
  const [status, setStatus] = useState({ state: "connecting", message: "Connecting to the race video…" });
  useEffect(() => {
    let session = null;
    let stopped = false;
    let timer = null;
    let grace = null;
    const retry = (ms) => {
      if (!stopped) timer = setTimeout(start, ms);
    };
    const reconnect = () => {
      clearTimeout(grace);
      if (stopped) return;
      setStatus({ state: "connecting", message: "Video interrupted; reconnecting…" });
      session && session.stop();
      session = null;
      retry(1000);
    };
    async function start() {
      if (stopped) return;
      setStatus({ state: "connecting", message: "Connecting to the race video…" });
      try {
        session = await playWhep(videoRef.current, whepUrl(raceId), {
          token: viewer,
          onState: (s) => {
            if (stopped) return;
            if (s === "connected") {
              clearTimeout(grace);
              setStatus({ state: "playing", message: "" });
            } else if (s === "disconnected") {
              // Often a moment's missed connectivity checks (a busy Wi-Fi, a loaded server): ICE
              // recovers by itself, and a new session would cost a keyframe and a visible restart.
              clearTimeout(grace);
              grace = setTimeout(reconnect, DISCONNECT_GRACE_MS);
            } else if (s === "failed" || s === "closed") {
              reconnect();
            }
          },
        });
      } catch (error) {
        const unavailable = error instanceof VideoUnavailable;
        setStatus({ state: unavailable ? "unavailable" : "failed", message: error.message });
        // Video may appear later (a server upgrade, the simulator starting): look again now and then.
        retry(unavailable ? retryMs * 6 : retryMs);
      }
    }
    start();
    return () => {
      stopped = true;
      clearTimeout(timer);
      clearTimeout(grace);
      if (session) session.stop();
    };
  }, [raceId, viewer, running]);
  // The decoded picture's width: what a test (or a curious organizer) can read without script.
  const [width, setWidth] = useState(0);
  return html`<div class=${"video " + status.state} data-video-state=${status.state} data-video-width=${width}>
    <video ref=${videoRef} muted autoplay playsinline aria-label="Race video"
      onResize=${(e) => setWidth(e.currentTarget.videoWidth)}></video>
    ${status.state !== "playing" && html`<p class="video-state" role="status">${status.message}</p>`}
    <div class="hud-layer">${children}</div>
  </div>`;
}
