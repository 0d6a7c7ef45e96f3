// restorium review: before/after slider, synchronised tile zoom, preset placeholders. Plain JS.
"use strict";

(function () {
  // --- before/after slider: the master is clipped from the left at the slider's value -----------
  const slider = document.getElementById("slider");
  const after = document.getElementById("after");
  const line = document.getElementById("ba-line");
  function cut() {
    after.style.clipPath = `inset(0 0 0 ${slider.value}%)`;
    line.style.left = `${slider.value}%`;
  }
  if (slider && after) {
    slider.addEventListener("input", cut);
    cut();
  }
  // A preview smaller than the view is shown with its pixels enlarged, never smoothed.
  for (const img of document.querySelectorAll(".ba img")) {
    const mark = () => img.classList.toggle("enlarged", img.naturalWidth > 0 && img.naturalWidth < img.clientWidth);
    img.complete ? mark() : img.addEventListener("load", mark);
  }

  // --- zoom: both panels show the same place (a fraction of the picture) at the same size -------
  // Each file is cut into 256 px tiles of its own pixels; at 100 % one master pixel is one CSS
  // pixel, and the original's pixels are enlarged by master width / original width, so the two
  // panels line up. Only the tiles in view are requested.
  const panels = [...document.querySelectorAll(".zoom")];
  const state = { scale: 1, cx: 0.5, cy: 0.5, masterWidth: 0 };
  window.restoriumZoom = state; // read by the browser tests

  function draw(panel) {
    const m = panel.manifest;
    if (!m || !state.masterWidth) return;
    const s = (state.scale * state.masterWidth) / m.width; // CSS px per image px
    const vw = panel.clientWidth, vh = panel.clientHeight;
    const x0 = state.cx * m.width - vw / (2 * s), y0 = state.cy * m.height - vh / (2 * s);
    const c0 = Math.max(0, Math.floor(x0 / m.tile)), c1 = Math.min(m.cols - 1, Math.floor((x0 + vw / s) / m.tile));
    const r0 = Math.max(0, Math.floor(y0 / m.tile)), r1 = Math.min(m.rows - 1, Math.floor((y0 + vh / s) / m.tile));
    const wanted = new Set();
    for (let r = r0; r <= r1; r++) {
      for (let c = c0; c <= c1; c++) {
        const key = `${c}-${r}`;
        wanted.add(key);
        let img = panel.tiles.get(key);
        if (!img) {
          img = document.createElement("img");
          img.alt = "";
          img.dataset.tile = key;
          img.src = `/img/${panel.dataset.file}/tile-${c}-${r}.jpg`;
          panel.appendChild(img);
          panel.tiles.set(key, img);
        }
        const w = Math.min(m.tile, m.width - c * m.tile), h = Math.min(m.tile, m.height - r * m.tile);
        img.style.left = `${(c * m.tile - x0) * s}px`;
        img.style.top = `${(r * m.tile - y0) * s}px`;
        img.style.width = `${w * s}px`;
        img.style.height = `${h * s}px`;
      }
    }
    for (const [key, img] of panel.tiles) {
      if (!wanted.has(key)) { img.remove(); panel.tiles.delete(key); }
    }
    panel.dataset.scale = String(s);
  }

  function drawAll() {
    panels.forEach(draw);
    const readout = document.getElementById("zoom-readout");
    if (readout) readout.textContent = `${state.scale * 100} % · centre ${(state.cx * 100).toFixed(1)} %, ${(state.cy * 100).toFixed(1)} %`;
    const mark = document.getElementById("ba-mark");
    if (mark) { mark.style.left = `${state.cx * 100}%`; mark.style.top = `${state.cy * 100}%`; }
    for (const b of document.querySelectorAll(".zoom-level")) b.classList.toggle("active", Number(b.dataset.scale) === state.scale);
  }

  function centre(cx, cy) {
    state.cx = Math.min(1, Math.max(0, cx));
    state.cy = Math.min(1, Math.max(0, cy));
    drawAll();
  }
  window.restoriumCentre = centre;

  panels.forEach((panel) => {
    panel.tiles = new Map();
    fetch(`/img/${panel.dataset.file}/manifest.json`, { credentials: "same-origin" })
      .then((r) => (r.ok ? r.json() : Promise.reject(new Error(`${r.status}`))))
      .then((m) => {
        panel.manifest = m;
        if (panel.id === "zoom-master") state.masterWidth = m.width;
        panel.dataset.ready = "1";
        drawAll();
      })
      .catch((e) => { panel.textContent = `cannot load the image (${e.message})`; });

    // Drag either panel: both move, by the same distance in master pixels.
    let drag = null;
    panel.addEventListener("pointerdown", (e) => {
      drag = { x: e.clientX, y: e.clientY, cx: state.cx, cy: state.cy };
      panel.setPointerCapture(e.pointerId);
    });
    panel.addEventListener("pointermove", (e) => {
      if (!drag || !panel.manifest) return;
      const s = Number(panel.dataset.scale) || 1;
      centre(drag.cx - (e.clientX - drag.x) / (s * panel.manifest.width),
             drag.cy - (e.clientY - drag.y) / (s * panel.manifest.height));
    });
    const stop = () => { drag = null; };
    panel.addEventListener("pointerup", stop);
    panel.addEventListener("pointercancel", stop);
  });

  for (const b of document.querySelectorAll(".zoom-level")) {
    b.addEventListener("click", () => { state.scale = Number(b.dataset.scale); drawAll(); });
  }
  const ba = document.getElementById("ba");
  if (ba) {
    ba.addEventListener("click", (e) => {
      const box = ba.getBoundingClientRect();
      centre((e.clientX - box.left) / box.width, (e.clientY - box.top) / box.height);
    });
  }
  const worst = document.getElementById("zoom-worst");
  if (worst) {
    // The guard reports its block in the restored scan's pixels: the original's size.
    worst.addEventListener("click", () => {
      const [x, y, w, h] = JSON.parse(worst.dataset.region).box; // x, y, w, h
      const m = document.getElementById("zoom-original").manifest;
      if (!m) return;
      state.scale = 2;
      centre((x + w / 2) / m.width, (y + h / 2) / m.height);
    });
  }
  window.addEventListener("resize", drawAll);

  // --- reprocess form: show the chosen preset's values as placeholders -------------------------
  const form = document.getElementById("reprocess-form");
  const preset = document.getElementById("preset");
  if (form && preset) {
    const values = JSON.parse(form.dataset.values || "{}");
    const show = () => {
      for (const input of form.querySelectorAll("input[data-field]")) {
        const v = (values[preset.value] || {})[input.dataset.field];
        input.placeholder = v === undefined ? "" : String(v);
      }
    };
    preset.addEventListener("change", show);
    show(); // a master made from a recipe file starts on the first preset
  }
})();
