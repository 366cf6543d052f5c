// Enrolment photos from the browser camera (getUserMedia) or files, with the server's live
// quality feedback. Camera shots join the form's file input, so one form posts everything.
// Every text goes through blink.t (its messages: JS_MESSAGES in backend/console/web.py);
// the server sends the photo's problems and the blink's answer in the page's language.
"use strict";
(() => {
  const csrf = document.getElementById("csrf").value;
  const video = document.getElementById("video");
  const start = document.getElementById("camera-start");
  const take = document.getElementById("camera-take");
  const quality = document.getElementById("quality");
  const files = document.getElementById("files");
  const shots = document.getElementById("shots");
  const blinkButton = document.getElementById("blink-start");
  const blinkLine = document.getElementById("blink");
  const BURST_MS = 3000;
  const MAX = 5;
  const taken = [];
  let timer = null;

  function frame() {
    const canvas = document.createElement("canvas");
    canvas.width = video.videoWidth;
    canvas.height = video.videoHeight;
    canvas.getContext("2d").drawImage(video, 0, 0);
    return new Promise((resolve) => canvas.toBlob(resolve, "image/jpeg", 0.92));
  }

  async function check(blob) {
    const body = new FormData();
    body.append("photo", blob, "frame.jpg");
    return blink.postForm("/api/quality", body, csrf);
  }

  function failed(line, err) {
    line.textContent = blink.t("Not checked: {error}", { error: err.message });
    line.className = "bad";
  }

  function describe(q) {
    if (q.ok) {
      return blink.t("good: one face, {px} px, yaw {yaw}°, pitch {pitch}°, sharpness {sharpness}, eyes open", {
        px: Math.round(q.face_px), yaw: q.yaw_deg, pitch: q.pitch_deg,
        sharpness: Math.round(q.sharpness),
      });
    }
    return blink.t("not yet: {problems}", { problems: q.problems.join("; ") });
  }

  function showQuality(q) {
    quality.textContent = blink.t("Quality: {quality}", { quality: describe(q) });
    quality.className = q.ok ? "good" : "bad";
  }

  function sync() {
    const dt = new DataTransfer();
    taken.forEach((blob, i) => dt.items.add(new File([blob], "camera-" + (i + 1) + ".jpg",
      { type: "image/jpeg" })));
    files.files = dt.files;
    shots.textContent = blink.t("{n} camera photo(s) taken", { n: taken.length });
    document.getElementById("camera").value = taken.length > 0 ? "1" : "0";
    take.disabled = taken.length >= MAX;
  }

  async function live() {
    if (video.readyState < 2) return;
    try {
      showQuality(await check(await frame()));
    } catch (err) {
      failed(quality, err);
    }
  }

  start.addEventListener("click", async () => {
    try {
      video.srcObject = await navigator.mediaDevices.getUserMedia({ video: { width: 640, height: 480 } });
    } catch (err) {
      quality.textContent = blink.t("No camera: {error} (use photo files)", { error: err.message });
      return;
    }
    take.disabled = false;
    blinkButton.disabled = false;
    start.disabled = true;
    timer = setInterval(live, 1500);
  });

  take.addEventListener("click", async () => {
    const outcome = document.getElementById("take-result");
    outcome.textContent = "";
    const blob = await frame();
    let q;
    try {
      q = await check(blob);
    } catch (err) {
      failed(outcome, err);
      return;
    }
    showQuality(q);
    if (q.ok && taken.length < MAX) { taken.push(blob); sync(); }
    outcome.textContent = q.ok
      ? blink.t("photo {n} taken", { n: taken.length })
      : blink.t("not taken: {why}", { why: describe(q) });
  });

  // Every camera frame for a few seconds, with its time, while the customer blinks.
  function burst() {
    return new Promise((resolve) => {
      const frames = [];
      const began = performance.now();
      const grab = async (now) => {
        frames.push([now - began, frame()]);
        if (now - began < BURST_MS) video.requestVideoFrameCallback(grab);
        else resolve(Promise.all(frames.map(async ([t, p]) => [t, await p])));
      };
      video.requestVideoFrameCallback(grab);
    });
  }

  blinkButton.addEventListener("click", async () => {
    blinkButton.disabled = true;
    blinkLine.textContent = blink.t("Blink: look at the camera and blink once now…");
    const frames = await burst();
    blinkLine.textContent = blink.t("Blink: checking {n} frames…", { n: frames.length });
    const body = new FormData();
    const stride = Math.ceil(frames.length / 60); // the server takes 60 frames at most
    frames.filter((_, i) => i % stride === 0).forEach(([t, blob], i) => {
      body.append("t", String(Math.round(t)));
      body.append("frame", blob, "f" + i + ".jpg");
    });
    let answer;
    try {
      answer = await blink.postForm("/api/blink", body, csrf);
    } catch (err) {
      failed(blinkLine, err);
      blinkButton.disabled = false;
      return;
    }
    document.getElementById("blink-proof").value = answer.proof || "";
    blinkLine.textContent = answer.live
      ? blink.t("Blink: seen, a live face ({n} frames)", { n: answer.frames })
      : blink.t("Blink: not seen ({why}); try again", { why: answer.message || answer.reason });
    blinkLine.className = answer.live ? "good" : "bad";
    blinkButton.disabled = false;
  });

  window.addEventListener("beforeunload", () => {
    if (timer) clearInterval(timer);
    if (video.srcObject) video.srcObject.getTracks().forEach((t) => t.stop());
  });
})();
