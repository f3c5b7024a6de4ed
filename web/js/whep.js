// WHEP playback (draft-ietf-wish-whep): POST an SDP offer to /api/races/{id}/whep, get 201 + the SDP
// answer + a Location to DELETE when done. Authorised like the race websocket: the session cookie,
// or a viewer token sent as a Bearer header (kept out of URLs and access logs).

export class VideoUnavailable extends Error {}

function iceGathered(pc, timeoutMs) {
  if (pc.iceGatheringState === "complete") return Promise.resolve();
  return new Promise((resolve) => {
    const done = () => {
      pc.removeEventListener("icegatheringstatechange", check);
      resolve();
    };
    const check = () => pc.iceGatheringState === "complete" && done();
    pc.addEventListener("icegatheringstatechange", check);
    setTimeout(done, timeoutMs);
  });
}

export function whepUrl(raceId) {
  return `/api/races/${raceId}/whep`;
}

/** Start playing the race's video into `video`. Resolves to {stop, pc}; rejects with
 *  VideoUnavailable when the server has no video endpoint (or no video for this race). */
export async function playWhep(video, url, { token = null, onState = () => {} } = {}) {
  if (typeof RTCPeerConnection === "undefined") throw new VideoUnavailable("This browser cannot play WebRTC video.");
  const headers = { "Content-Type": "application/sdp" };
  if (token) headers.Authorization = `Bearer ${token}`;
  const pc = new RTCPeerConnection();
  pc.addTransceiver("video", { direction: "recvonly" });
  pc.ontrack = (event) => {
    video.srcObject = event.streams[0] || new MediaStream([event.track]);
    video.play().catch(() => {});
  };
  pc.onconnectionstatechange = () => onState(pc.connectionState);
  let location = null;
  try {
    await pc.setLocalDescription(await pc.createOffer());
    await iceGathered(pc, 1500);
    const response = await fetch(url, { method: "POST", headers, body: pc.localDescription.sdp, credentials: "same-origin" });
    if ([404, 405, 501].includes(response.status)) {
      throw new VideoUnavailable("Video unavailable: this server does not stream race video yet.");
    }
    if (response.status === 503 || response.status === 409) {
      const text = await response.text();
      throw new VideoUnavailable(`Video unavailable: ${messageOf(text) || "no video for this race right now"}.`);
    }
    if (response.status !== 201) {
      throw new Error(`The video could not start: ${messageOf(await response.text()) || `server answered ${response.status}`}`);
    }
    location = new URL(response.headers.get("Location") || url, window.location.href).href;
    await pc.setRemoteDescription({ type: "answer", sdp: await response.text() });
  } catch (error) {
    pc.close();
    throw error;
  }
  return {
    pc,
    async stop() {
      pc.close();
      video.srcObject = null;
      if (location) await fetch(location, { method: "DELETE", headers: token ? { Authorization: `Bearer ${token}` } : {}, credentials: "same-origin" }).catch(() => {});
    },
  };
}

function messageOf(text) {
  try {
    return JSON.parse(text).error;
  } catch {
    return text && text.length < 200 ? text : "";
  }
}
