// A WHEP viewer for headless Chromium (tests and `trackside bench stream`): plays a race's video and
// reads each presented frame's capture time from its corner code (race_server/stream/probe.py),
// so capture -> display ("glass to glass") is measured on the page. Evaluated by Playwright as
// `(args) => ...`; results accumulate in window.__video.
async ({ url, token }) => {
  const BLOCK = 8, COLUMNS = 20, BITS = 40, HEIGHT = 16, WIDTH = 160, MOD = 4294967296;
  const state = { frames: [], location: null, error: null };
  window.__video = state;
  const pc = new RTCPeerConnection();
  pc.addTransceiver("video", { direction: "recvonly" });
  const video = document.createElement("video");
  video.muted = true;
  video.autoplay = true;
  video.playsInline = true;
  document.body.appendChild(video);
  pc.ontrack = (event) => { video.srcObject = event.streams[0] || new MediaStream([event.track]); };
  await pc.setLocalDescription(await pc.createOffer());
  await new Promise((resolve) => {
    if (pc.iceGatheringState === "complete") return resolve();
    pc.addEventListener("icegatheringstatechange", () => pc.iceGatheringState === "complete" && resolve());
    setTimeout(resolve, 2000);  // answer with what was gathered: loopback candidates come first
  });
  const headers = { "Content-Type": "application/sdp" };
  if (token) headers.Authorization = `Bearer ${token}`;
  const response = await fetch(url, { method: "POST", headers, body: pc.localDescription.sdp });
  if (response.status !== 201) {
    state.error = `WHEP answered ${response.status}: ${await response.text()}`;
    return state.error;
  }
  state.location = response.headers.get("Location");
  await pc.setRemoteDescription({ type: "answer", sdp: await response.text() });
  const canvas = document.createElement("canvas");
  canvas.width = WIDTH;
  canvas.height = HEIGHT;
  const ctx = canvas.getContext("2d", { willReadFrequently: true });
  const read = () => {
    ctx.drawImage(video, 0, video.videoHeight - HEIGHT, WIDTH, HEIGHT, 0, 0, WIDTH, HEIGHT);
    const data = ctx.getImageData(0, 0, WIDTH, HEIGHT).data;
    let value = 0, check = 0;
    for (let i = 0; i < BITS; i++) {
      const row = Math.floor(i / COLUMNS), col = i % COLUMNS;
      const at = ((row * BLOCK + BLOCK / 2) * WIDTH + col * BLOCK + BLOCK / 2) * 4;
      const bit = (data[at] + data[at + 1] + data[at + 2]) / 3 >= 128 ? 1 : 0;
      if (i < 32) value += bit * 2 ** i; else check += bit * 2 ** (i - 32);
    }
    const sum = (value & 0xff) + ((value >>> 8) & 0xff) + ((value >>> 16) & 0xff) + ((value >>> 24) & 0xff);
    return (sum & 0xff) === check ? value : null;
  };
  const onFrame = (_now, meta) => {
    const code = read();
    const shown = Date.now();
    const age = code === null ? null : ((shown % MOD) - code + MOD) % MOD;
    state.frames.push({ presented: meta.presentedFrames, width: video.videoWidth, height: video.videoHeight, age });
    if (state.frames.length > 20000) state.frames.splice(0, 10000);
    video.requestVideoFrameCallback(onFrame);
  };
  video.requestVideoFrameCallback(onFrame);
  // The browser's own counters, to tell frames the network or the decoder lost from frames the
  // compositor skipped and from callbacks the page missed (rVFC may skip a busy main thread).
  state.counters = async () => {
    let rtp = {};
    (await pc.getStats()).forEach((report) => {
      if (report.type === "inbound-rtp" && report.kind === "video") rtp = report;
    });
    const quality = video.getVideoPlaybackQuality();
    return {
      received: rtp.framesReceived ?? 0, decoded: rtp.framesDecoded ?? 0, rtpDropped: rtp.framesDropped ?? 0,
      packetsLost: rtp.packetsLost ?? 0, freezes: rtp.freezeCount ?? 0,
      jitterBufferDelayS: rtp.jitterBufferDelay ?? 0, jitterBufferEmitted: rtp.jitterBufferEmittedCount ?? 0,
      totalVideoFrames: quality.totalVideoFrames, droppedVideoFrames: quality.droppedVideoFrames,
      presented: state.frames.length ? state.frames.at(-1).presented : 0,
    };
  };
  state.close = async () => { pc.close(); if (state.location) await fetch(state.location, { method: "DELETE", headers }); };
  return null;
}
