// restorium review: the original and the master in two OpenSeadragon viewers over the app's IIIF
// tiles (JPEG), showing the same place at the same size. Plain JS, no build step.
//
// Why sharing the viewport is enough: each viewer's world is its one image, width 1, so viewport
// coordinates are image coordinates divided by the image width. The master is the original
// enlarged (2x, 4x), same aspect ratio, and both panels have the same size: the same viewport
// centre and zoom show the same place, the original's pixels enlarged by master/original width.
// So every zoom and pan of one viewer is replayed on the other with the same arguments (and
// both animate alike); a flag stops the replay from being replayed back.
"use strict";

(function () {
  const elements = { original: document.getElementById("zoom-original"), master: document.getElementById("zoom-master") };
  if (!elements.original || !elements.master) return;
  if (!window.OpenSeadragon) {
    for (const el of Object.values(elements)) el.textContent = "the zoom viewer did not load";
    return;
  }
  const MAX_SCALE = 8; // 800 % of the master's pixels at most (the original's limit is set to match)
  // The view as the buttons, the slider's mark and the tests see it: master zoom (1 = one master
  // pixel per CSS pixel) and centre (fractions of the picture); targets, not the animation.
  const state = { scale: 0, cx: 0.5, cy: 0.5, ready: false };
  const viewers = {};
  const api = { viewers, state, view, fit };
  window.restoriumZoom = state;
  window.restoriumDeepZoom = api;
  let replaying = false;
  let opened = 0;
  let pending = null; // a view asked for before both viewers opened

  for (const [name, element] of Object.entries(elements)) {
    const viewer = OpenSeadragon({
      element,
      tileSources: element.dataset.info,
      showNavigationControl: false, // the buttons above; the package's button images are not shipped
      drawer: "canvas", // the same drawing on every browser, WebGL or not
      imageSmoothingEnabled: false, // enlarged pixels stay pixels: nothing smoothed over
      maxZoomPixelRatio: MAX_SCALE,
      animationTime: 0.6,
      crossOriginPolicy: false,
    });
    viewers[name] = viewer;
    element.dataset.ready = "";
    viewer.addHandler("zoom", (e) => replay(viewer, (other) => other.viewport.zoomTo(e.zoom, e.refPoint, e.immediately)));
    viewer.addHandler("pan", (e) => replay(viewer, (other) => other.viewport.panTo(e.center, e.immediately)));
    // Both reach the same targets; a frame of drift on the way is set right when one stops.
    viewer.addHandler("animation-finish", () => { if (!replaying && state.ready) snap(viewer); });
    viewer.addHandler("viewport-change", () => { if (name === "master") report(); });
    viewer.addHandler("open", () => {
      element.dataset.ready = "1";
      if (++opened === 2) start();
    });
    viewer.addHandler("open-failed", (e) => {
      element.dataset.ready = "failed";
      const message = document.createElement("p");
      message.className = "zoom-error";
      message.textContent = `cannot load the image (${e.message || "error"})`;
      element.appendChild(message);
    });
  }

  function otherOf(viewer) {
    return viewer === viewers.master ? viewers.original : viewers.master;
  }

  function replay(viewer, apply) {
    if (viewer === viewers.master) report();
    if (replaying || !state.ready) return;
    replaying = true;
    try {
      apply(otherOf(viewer));
    } finally {
      replaying = false;
    }
  }

  function snap(from) {
    const to = otherOf(from);
    const a = from.viewport, b = to.viewport;
    const zoom = a.getZoom(true), centre = a.getCenter(true);
    if (Math.abs(b.getZoom(true) / zoom - 1) < 1e-9 && b.getCenter(true).distanceTo(centre) < 1e-9) return;
    replaying = true;
    try {
      b.zoomTo(zoom, null, true);
      b.panTo(centre, true);
    } finally {
      replaying = false;
    }
  }

  function start() {
    // The original may be enlarged as far as the master: the same limit in viewport terms.
    const widths = { master: size(viewers.master).x, original: size(viewers.original).x };
    viewers.original.viewport.maxZoomPixelRatio = MAX_SCALE * widths.master / widths.original;
    state.ready = true;
    snap(viewers.master);
    report();
    if (pending) {
      const [scale, cx, cy] = pending;
      pending = null;
      view(scale, cx, cy);
    }
  }

  function size(viewer) {
    return viewer.world.getItemAt(0).source.dimensions; // full-resolution pixels (info.json)
  }

  // Show the master at `scale` (null: keep) centred on (cx, cy), fractions of the picture (null: keep).
  function view(scale, cx, cy) {
    if (!state.ready) {
      pending = [scale ?? (pending && pending[0]), cx ?? (pending && pending[1]), cy ?? (pending && pending[2])];
      return;
    }
    const vp = viewers.master.viewport, dims = size(viewers.master);
    if (cx !== null && cx !== undefined) {
      const clamp = (v) => Math.min(1, Math.max(0, v));
      vp.panTo(vp.imageToViewportCoordinates(clamp(cx) * dims.x, clamp(cy) * dims.y));
    }
    if (scale) vp.zoomTo(vp.imageToViewportZoom(scale));
  }

  function fit() {
    if (state.ready) viewers.master.viewport.goHome();
  }

  function report() {
    const viewer = viewers.master;
    if (!viewer || !viewer.world.getItemAt(0)) return;
    const vp = viewer.viewport, dims = size(viewer);
    const centre = vp.viewportToImageCoordinates(vp.getCenter(false));
    state.scale = vp.viewportToImageZoom(vp.getZoom(false));
    state.cx = centre.x / dims.x;
    state.cy = centre.y / dims.y;
    const readout = document.getElementById("zoom-readout");
    if (readout) readout.textContent = `${Math.round(state.scale * 100)} % · centre ${(state.cx * 100).toFixed(1)} %, ${(state.cy * 100).toFixed(1)} %`;
    const mark = document.getElementById("ba-mark");
    if (mark) { mark.style.left = `${state.cx * 100}%`; mark.style.top = `${state.cy * 100}%`; }
    for (const b of document.querySelectorAll(".zoom-level")) {
      b.classList.toggle("active", Math.abs(Number(b.dataset.scale) - state.scale) < 1e-6);
    }
  }

  // --- the buttons -------------------------------------------------------------------------------
  for (const b of document.querySelectorAll(".zoom-level")) {
    b.addEventListener("click", () => view(Number(b.dataset.scale), null, null));
  }
  const whole = document.getElementById("zoom-fit");
  if (whole) whole.addEventListener("click", fit);
  const worst = document.getElementById("zoom-worst");
  if (worst) {
    // The guard reports its block in the restored scan's pixels: the original's size.
    worst.addEventListener("click", () => {
      const [x, y, w, h] = JSON.parse(worst.dataset.region).box; // x, y, w, h
      if (!state.ready) return;
      const dims = size(viewers.original);
      view(2, (x + w / 2) / dims.x, (y + h / 2) / dims.y);
    });
  }
  // The before/after comparison (review.js) picks the place to look at.
  window.restoriumCentre = (cx, cy) => view(null, cx, cy);
})();
