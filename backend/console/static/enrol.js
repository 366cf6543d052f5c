// Enrolment photos from the browser camera (getUserMedia) or files, with the server's live
// quality feedback. Camera shots join the form's file input, so one form posts everything.
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
    const response = await fetch("/api/quality", {
      method: "POST", body, headers: { "X-CSRF-Token": csrf }, credentials: "same-origin",
    });
    return response.json();
  }

  function describe(q) {
    if (q.ok) return "good: one face, " + Math.round(q.face_px) + " px, yaw " + q.yaw_deg +
      "°, pitch " + q.pitch_deg + "°, sharpness " + Math.round(q.sharpness) + ", eyes open";
    return "not yet: " + q.problems.join("; ");
  }

  function sync() {
    const dt = new DataTransfer();
    taken.forEach((blob, i) => dt.items.add(new File([blob], "camera-" + (i + 1) + ".jpg",
      { type: "image/jpeg" })));
    files.files = dt.files;
    shots.textContent = taken.length + " camera photo(s) taken";
    document.getElementById("camera").value = taken.length > 0 ? "1" : "0";
    take.disabled = taken.length >= MAX;
  }

  async function live() {
    if (video.readyState < 2) return;
    const q = await check(await frame());
    quality.textContent = "Quality: " + describe(q);
    quality.className = q.ok ? "good" : "bad";
  }

  start.addEventListener("click", async () => {
    try {
      video.srcObject = await navigator.mediaDevices.getUserMedia({ video: { width: 640, height: 480 } });
    } catch (err) {
      quality.textContent = "No camera: " + err.message + " (use photo files)";
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
    const q = await check(blob);
    quality.textContent = "Quality: " + describe(q);
    quality.className = q.ok ? "good" : "bad";
    if (q.ok && taken.length < MAX) { taken.push(blob); sync(); }
    outcome.textContent = q.ok ? "photo " + taken.length + " taken" : "not taken: " + describe(q);
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
    blinkLine.textContent = "Blink: look at the camera and blink once now…";
    const frames = await burst();
    blinkLine.textContent = "Blink: checking " + frames.length + " frames…";
    const body = new FormData();
    const stride = Math.ceil(frames.length / 60); // the server takes 60 frames at most
    frames.filter((_, i) => i % stride === 0).forEach(([t, blob], i) => {
      body.append("t", String(Math.round(t)));
      body.append("frame", blob, "f" + i + ".jpg");
    });
    const response = await fetch("/api/blink", {
      method: "POST", body, headers: { "X-CSRF-Token": csrf }, credentials: "same-origin",
    });
    const answer = await response.json();
    document.getElementById("blink-proof").value = answer.proof || "";
    blinkLine.textContent = answer.live
      ? "Blink: seen, a live face (" + answer.frames + " frames)"
      : "Blink: not seen (" + (answer.message || answer.reason) + "); try again";
    blinkLine.className = answer.live ? "good" : "bad";
    blinkButton.disabled = false;
  });

  window.addEventListener("beforeunload", () => {
    if (timer) clearInterval(timer);
    if (video.srcObject) video.srcObject.getTracks().forEach((t) => t.stop());
  });
})();
