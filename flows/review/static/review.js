// restorium review: before/after slider, preset placeholders (the deep zoom is deepzoom.js). Plain JS.
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

  // --- the comparison picks where the zoom (deepzoom.js) looks ------------------------------------
  const ba = document.getElementById("ba");
  if (ba) {
    ba.addEventListener("click", (e) => {
      const box = ba.getBoundingClientRect();
      if (window.restoriumCentre) window.restoriumCentre((e.clientX - box.left) / box.width, (e.clientY - box.top) / box.height);
    });
  }

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
