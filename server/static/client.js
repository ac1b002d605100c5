// Stylecast page client: camera -> WebRTC -> server -> stylized stream back, with controls on a
// data channel and a stats overlay (frames per second, camera-to-screen latency, dropped frames).
//
// Latency is measured with a timestamp that travels with each frame: before sending, every
// camera frame is drawn on a canvas with a strip of STAMP_ROWS rows below it that encodes
// performance.now() in STAMP_BITS black and white cells. The server stylizes the picture and
// copies the strip back unchanged; when the stylized frame is shown, the page reads the strip
// and subtracts. Both ends of the measurement are this page's clock. The strip is hidden by CSS.
"use strict";

const Stylecast = (() => {
  const STAMP_ROWS = 16;
  const STAMP_BITS = 24;
  const MODULUS = 2 ** STAMP_BITS; // milliseconds: wraps every 4.6 hours
  const params = new URLSearchParams(location.search);
  const token = params.get("token");
  const stats = (window.stylecastStats = {
    connected: false, framesShown: 0, fps: 0, latencyMs: null, latencyP50Ms: null, latencyP95Ms: null,
    latencies: [], latencyCount: 0, dropped: 0, received: 0, processed: 0, serverMs: 0, processingMaxSize: null,
    settings: null, errors: [], remoteSlots: 0,
  });
  const $ = (id) => document.getElementById(id);
  let channel = null;
  let sentWidth = 0;

  function headers() {
    const h = { "Content-Type": "application/json" };
    if (token) h["X-Stylecast-Token"] = token;
    return h;
  }

  function showError(message) {
    stats.errors.push(message);
    $("error").hidden = false;
    $("error").textContent = message;
  }

  // What getUserMedia's refusals mean to someone at the page, and what to do about them.
  function cameraProblem(error) {
    const again = "then press Start again.";
    switch (error && error.name) {
      case "NotFoundError":
      case "OverconstrainedError":
        return `No camera was found. Connect one (or enable it), ${again}`;
      case "NotAllowedError":
      case "SecurityError":
        return `The camera is blocked for this page. Allow it in the browser's site settings, ${again}`;
      case "NotReadableError":
      case "AbortError":
        return `The camera is in use by another program or could not start. Close that program, ${again}`;
      default:
        return `The camera could not be opened (${error && error.name ? error.name : error}). ${again}`;
    }
  }

  async function getJSON(url) {
    const response = await fetch(url, { headers: headers() });
    if (!response.ok) throw new Error(`${url}: ${response.status}`);
    return response.json();
  }

  function onEachFrame(video, callback) {
    // requestVideoFrameCallback where the browser has it, else poll for a new currentTime
    if (video.requestVideoFrameCallback) {
      const loop = (now, meta) => { callback(meta); video.requestVideoFrameCallback(loop); };
      video.requestVideoFrameCallback(loop);
    } else {
      let last = -1;
      const poll = () => { if (video.currentTime !== last) { last = video.currentTime; callback(null); } requestAnimationFrame(poll); };
      requestAnimationFrame(poll);
    }
  }

  // Camera frames redrawn on a canvas with the timestamp strip; its stream is what we send.
  function stampedStream(camera) {
    const canvas = document.createElement("canvas");
    const ctx = canvas.getContext("2d");
    onEachFrame(camera, () => {
      const w = camera.videoWidth, h = camera.videoHeight;
      if (!w || !h) return;
      if (canvas.width !== w || canvas.height !== h + STAMP_ROWS) {
        canvas.width = w;
        canvas.height = h + STAMP_ROWS;
        sentWidth = w;
      }
      ctx.drawImage(camera, 0, 0, w, h);
      const now = Math.round(performance.now()) % MODULUS;
      const cell = w / STAMP_BITS;
      for (let i = 0; i < STAMP_BITS; i++) {
        ctx.fillStyle = (Math.floor(now / 2 ** (STAMP_BITS - 1 - i)) % 2) ? "#fff" : "#000";
        ctx.fillRect(Math.floor(i * cell), h, Math.ceil(cell) + 1, STAMP_ROWS);
      }
    });
    return canvas.captureStream();
  }

  function readStamp(video, reader) {
    const w = video.videoWidth, h = video.videoHeight;
    if (!w || !h || !sentWidth) return null;
    const rows = Math.max(2, Math.round((STAMP_ROWS * w) / sentWidth)); // the sender may scale
    reader.canvas.width = w;
    reader.canvas.height = 1;
    reader.drawImage(video, 0, h - Math.ceil(rows / 2), w, 1, 0, 0, w, 1); // the strip's middle row
    const pixels = reader.getImageData(0, 0, w, 1).data;
    let value = 0;
    for (let i = 0; i < STAMP_BITS; i++) {
      const x = Math.floor(((i + 0.5) * w) / STAMP_BITS) * 4;
      const luma = 0.299 * pixels[x] + 0.587 * pixels[x + 1] + 0.114 * pixels[x + 2];
      value = value * 2 + (luma > 127 ? 1 : 0);
    }
    return value;
  }

  function hideStrip(video) {
    const w = video.videoWidth, h = video.videoHeight;
    if (!w || !h || !sentWidth) return;
    const rows = Math.round((STAMP_ROWS * w) / sentWidth) + 1; // and the row the codec blurred into the picture
    video.parentElement.style.aspectRatio = `${w} / ${h - rows}`;
  }

  function percentile(sorted, p) {
    return sorted.length ? sorted[Math.min(sorted.length - 1, Math.floor(p * sorted.length))] : null;
  }

  // Stats of the stylized stream: frames shown per second and latency from the strip.
  function measure(video) {
    const reader = document.createElement("canvas").getContext("2d", { willReadFrequently: true });
    const shownAt = []; // [time, frames shown so far], over the last second
    let presentedBefore = null;
    onEachFrame(video, (meta) => {
      const now = performance.now();
      // The callback runs at most once per rendering update, so two frames that arrive between
      // updates make one call; presentedFrames counts every frame handed to the compositor.
      if (meta && meta.presentedFrames) {
        if (presentedBefore === null) presentedBefore = meta.presentedFrames - 1;
        stats.framesShown = meta.presentedFrames - presentedBefore;
      } else {
        stats.framesShown += 1;
      }
      shownAt.push([now, stats.framesShown]);
      // keep the newest entry at least a second old, so a stall reads as a low rate, not zero
      while (shownAt.length > 2 && now - shownAt[1][0] >= 1000) shownAt.shift();
      const [since, shownThen] = shownAt[0];
      stats.fps = now > since ? ((stats.framesShown - shownThen) * 1000) / (now - since) : 0;
      const stamp = readStamp(video, reader);
      if (stamp !== null) {
        const latency = (Math.round(now) - stamp + MODULUS) % MODULUS;
        if (latency < 10000) {
          stats.latencies.push(latency);
          stats.latencyCount += 1;  // all measured so far; latencies keeps the newest 300
          if (stats.latencies.length > 300) stats.latencies.shift();
          const sorted = [...stats.latencies].sort((a, b) => a - b);
          stats.latencyMs = latency;
          stats.latencyP50Ms = percentile(sorted, 0.5);
          stats.latencyP95Ms = percentile(sorted, 0.95);
        }
      }
      hideStrip(video);
      $("stats").textContent =
        `${stats.fps.toFixed(1)} fps\nlatency ${stats.latencyMs ?? "-"} ms (p95 ${stats.latencyP95Ms ?? "-"})\n` +
        `dropped ${stats.dropped} of ${stats.received}` + (stats.processingMaxSize ? `\nprocessing at ${stats.processingMaxSize} px` : "");
    });
  }

  function currentSettings() {
    const size = $("resolution") ? $("resolution").value : "";
    const settings = {
      model: $("model").value,
      strength: Number($("strength").value),
      preserve_color: $("preserve").checked,
      max_size: size ? Number(size) : null,
    };
    if (!$("style-label").hidden) settings.style = $("stylepick").value;
    return settings;
  }

  // A multi-style model offers its styles in a second picker (switching needs no reload).
  let modelStyles = {};
  function showStyles() {
    const names = modelStyles[$("model").value] || [];
    const pick = $("stylepick");
    pick.innerHTML = "";
    for (const name of names) pick.add(new Option(name, name));
    $("style-label").hidden = names.length === 0;
  }

  function sendSettings() {
    if (channel && channel.readyState === "open") channel.send(JSON.stringify({ type: "settings", ...currentSettings() }));
  }

  function onMessage(event) {
    const message = JSON.parse(event.data);
    if (message.type === "stats") {
      stats.dropped = message.dropped;
      stats.received = message.received;
      stats.processed = message.processed;
      stats.serverMs = message.server_ms;
      stats.processingMaxSize = message.processing_max_size;
    } else if (message.type === "settings") {
      stats.settings = message;
    } else if (message.type === "error") {
      showError(message.message);
    }
  }

  function iceComplete(pc, timeoutMs = 4000) {
    // aiortc has no trickle ICE: the offer must carry every candidate
    if (pc.iceGatheringState === "complete") return Promise.resolve();
    return new Promise((resolve) => {
      const done = () => { if (pc.iceGatheringState === "complete") { pc.removeEventListener("icegatheringstatechange", done); resolve(); } };
      pc.addEventListener("icegatheringstatechange", done);
      setTimeout(resolve, timeoutMs);
    });
  }

  // Rows of the timestamp strip under another participant's picture: their camera's size is not
  // ours, so the strip is found in the frame itself, as the bottom rows that repeat the last one.
  function stripRowsOf(video, reader) {
    const w = video.videoWidth, h = video.videoHeight;
    if (!w || !h) return 0;
    const look = Math.min(h - 1, Math.ceil((4 * STAMP_ROWS * w) / 320)); // a strip is never this tall
    reader.canvas.width = w;
    reader.canvas.height = look;
    reader.drawImage(video, 0, h - look, w, look, 0, 0, w, look);
    const pixels = reader.getImageData(0, 0, w, look).data;
    const luma = (row, i) => {
      const x = (row * w + Math.floor(((i + 0.5) * w) / STAMP_BITS)) * 4;
      return 0.299 * pixels[x] + 0.587 * pixels[x + 1] + 0.114 * pixels[x + 2];
    };
    let rows = 1;
    while (rows < look) {
      const row = look - 1 - rows;
      let same = true;
      for (let i = 0; i < STAMP_BITS && same; i++) same = Math.abs(luma(row, i) - luma(look - 1, i)) < 48;
      if (!same) break;
      rows += 1;
    }
    return rows + 1; // and the row the codec blurred into the picture
  }

  function addSlotVideo(index, track) {
    const figure = document.createElement("figure");
    figure.className = "stylized";
    figure.hidden = true; // until the slot has someone in it
    figure.innerHTML = `<div class="clip"><video autoplay muted playsinline data-slot="${index}"></video></div><figcaption>participant ${index}</figcaption>`;
    $("grid").appendChild(figure);
    const video = figure.querySelector("video");
    video.srcObject = new MediaStream([track]);
    const reader = document.createElement("canvas").getContext("2d", { willReadFrequently: true });
    onEachFrame(video, () => {
      figure.hidden = false;
      const frames = Number(video.dataset.frames || 0) + 1;
      video.dataset.frames = String(frames);
      if (frames % 30 === 1) { // the strip is found again now and then: a participant's size can change
        const rows = stripRowsOf(video, reader);
        video.dataset.stripRows = String(rows);
        video.parentElement.style.aspectRatio = `${video.videoWidth} / ${video.videoHeight - rows}`;
      }
    });
    stats.remoteSlots += 1;
  }

  // The styles on offer, listed as soon as the page loads (before any camera is asked for).
  let config = null;
  async function loadConfig() {
    config = await getJSON("/api/config");
    const select = $("model");
    for (const name of config.models) select.add(new Option(name, name, false, name === config.default_model));
    modelStyles = config.styles || {};
    showStyles();
    select.addEventListener("change", () => { showStyles(); sendSettings(); }); // the new model's styles first
    return config;
  }

  async function openCamera() {
    if (!navigator.mediaDevices || !navigator.mediaDevices.getUserMedia) {
      throw new Error("This browser gives this page no camera: open it over https or from localhost.");
    }
    try {
      return await navigator.mediaDevices.getUserMedia({
        video: { width: { ideal: 640 }, height: { ideal: 480 }, frameRate: { ideal: 30 } }, audio: false,
      });
    } catch (error) {
      throw new Error(cameraProblem(error));
    }
  }

  async function connect(offerPath, roomSlots) {
    const camera = await openCamera();
    const local = $("local");
    local.srcObject = camera;
    await local.play().catch(() => {});
    const stamped = stampedStream(local);

    const pc = new RTCPeerConnection();
    pc.addTransceiver(stamped.getVideoTracks()[0], { direction: "sendrecv", streams: [stamped] });
    const slots = roomSlots ? config.max_room_size - 1 : 0;
    for (let i = 0; i < slots; i++) pc.addTransceiver("video", { direction: "recvonly" });
    channel = pc.createDataChannel("control");
    channel.onmessage = onMessage;
    channel.onopen = sendSettings;
    pc.ontrack = (event) => {
      const index = pc.getTransceivers().indexOf(event.transceiver);
      if (index <= 0) {
        $("remote").srcObject = new MediaStream([event.track]);
        measure($("remote"));
      } else {
        addSlotVideo(index, event.track);
      }
    };
    pc.onconnectionstatechange = () => {
      stats.connected = pc.connectionState === "connected";
      if (pc.connectionState === "failed") showError("the connection failed");
    };
    await pc.setLocalDescription(await pc.createOffer());
    await iceComplete(pc);
    const response = await fetch(offerPath, {
      method: "POST",
      headers: headers(),
      body: JSON.stringify({ sdp: pc.localDescription.sdp, type: "offer", settings: currentSettings(), stamp_rows: STAMP_ROWS }),
    });
    const answer = await response.json();
    if (!response.ok) throw new Error(answer.error || response.statusText);
    await pc.setRemoteDescription(answer);
    window.stylecastPeer = pc;
  }

  // A frame of a <video> as a data URL (the tests compare input and output pixels).
  function grab(id) {
    const video = typeof id === "string" ? $(id) : id;
    const canvas = document.createElement("canvas");
    canvas.width = video.videoWidth;
    canvas.height = video.videoHeight;
    canvas.getContext("2d").drawImage(video, 0, 0);
    return canvas.toDataURL("image/png");
  }

  function bind(start) {
    for (const id of ["stylepick", "strength", "preserve", "resolution"]) if ($(id)) $(id).addEventListener("change", sendSettings);
    const begin = () => {
      $("start").disabled = true;
      $("error").hidden = true;
      start().catch((e) => {
        showError(e && e.message ? e.message : String(e));
        $("start").disabled = false; // a retry, once the camera is connected or allowed
      });
    };
    $("start").disabled = true; // until the styles are listed
    loadConfig()
      .then(() => { $("start").disabled = false; if (params.get("autostart")) begin(); })
      .catch((e) => showError(`The server did not answer: ${e && e.message ? e.message : e}. Reload the page to try again.`));
    $("start").addEventListener("click", begin);
  }

  return {
    single: () => bind(() => connect("/offer", false)),
    room: () => {
      const name = decodeURIComponent(location.pathname.split("/").filter(Boolean).pop());
      $("room-name").textContent = name;
      bind(() => connect(`/room/${encodeURIComponent(name)}/offer`, true));
    },
    grab,
    sendSettings,
  };
})();
