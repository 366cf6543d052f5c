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
    start.disabled = true;
    timer = setInterval(live, 1500);
  });

  take.addEventListener("click", async () => {
    const blob = await frame();
    const q = await check(blob);
    quality.textContent = "Quality: " + describe(q);
    quality.className = q.ok ? "good" : "bad";
    if (q.ok && taken.length < MAX) { taken.push(blob); sync(); }
  });

  window.addEventListener("beforeunload", () => {
    if (timer) clearInterval(timer);
    if (video.srcObject) video.srcObject.getTracks().forEach((t) => t.stop());
  });
})();
