// Live progress of one training run: polls the API until the run has ended; between polls the
// elapsed time counts on by itself. Phase times and estimates come from the API's `timing`.
(function () {
  "use strict";
  const box = document.getElementById("run");
  if (!box) return;
  const ended = new Set(["succeeded", "failed", "cancelled"]);
  const el = (id) => document.getElementById(id);
  let elapsed = null;     // seconds at the last poll
  let polledAt = null;    // when that was (ms)

  // The same words as inspections/registry/pages/run_details.py duration_text.
  function duration(seconds) {
    if (seconds === null || seconds === undefined) return "–";
    const s = Math.round(seconds);
    if (s < 60) return s + " s";
    const pad = (n) => String(n).padStart(2, "0");
    if (s < 3600) return Math.floor(s / 60) + " min " + pad(s % 60) + " s";
    return Math.floor(s / 3600) + " h " + pad(Math.floor((s % 3600) / 60)) + " min";
  }

  function estimate(phase) {
    if (phase.state === "done") return "";
    if (phase.estimate_s === null) return "unknown: " + phase.basis;
    return "about " + duration(phase.estimate_s) + (phase.state === "current" ? " left (" : " (") + phase.basis + ")";
  }

  function showTiming(run) {
    const timing = run.timing;
    if (!timing) return;
    elapsed = timing.elapsed_s !== null ? timing.elapsed_s : timing.waiting_s;
    polledAt = Date.now();
    el("run-elapsed").textContent = duration(elapsed);
    el("run-elapsed").previousElementSibling.textContent = run.status === "queued" ? "Waiting" : "Elapsed";
    const remaining = el("run-remaining");
    if (timing.remaining_s !== null) {
      let text = (timing.remaining_is_lower_bound ? "at least " : "about ") + duration(timing.remaining_s);
      if (timing.finish_at) {
        const at = new Date(timing.finish_at);
        text += " (done around " + String(at.getHours()).padStart(2, "0") + ":" + String(at.getMinutes()).padStart(2, "0") + ")";
      }
      remaining.textContent = text;
    }
    remaining.hidden = remaining.previousElementSibling.hidden = timing.remaining_s === null;
    const table = el("run-phases");
    const body = table.querySelector("tbody");
    body.replaceChildren(...timing.phases.map((phase) => {
      const row = document.createElement("tr");
      row.dataset.phase = phase.name;
      row.dataset.state = phase.state;
      [phase.label, phase.seconds === null ? "" : duration(phase.seconds), estimate(phase)].forEach((text, i) => {
        const cell = document.createElement("td");
        cell.textContent = text;
        if (i) cell.dataset.field = i === 1 ? "seconds" : "estimate";
        row.appendChild(cell);
      });
      return row;
    }));
    table.hidden = timing.phases.length === 0;
  }

  function show(run) {
    el("run-progress").value = run.progress;
    el("run-percent").textContent = Math.round(run.progress * 100) + "%";
    el("run-phase").textContent = run.phase || (run.status === "queued" ? "waiting for a training worker" : "–");
    el("run-status").textContent = run.status;
    el("run-status").className = "pill status-" + run.status;
    el("run-log").textContent = run.log || "";
    showTiming(run);
    const cancel = el("cancel-form");
    if (cancel) cancel.hidden = ended.has(run.status);
  }

  async function poll() {
    try {
      const response = await fetch(box.dataset.api, { headers: { Accept: "application/json" }, credentials: "same-origin" });
      if (response.ok) {
        const run = await response.json();
        show(run);
        if (ended.has(run.status)) { window.location.reload(); return; }
      }
    } catch (error) { /* the next poll tries again */ }
    window.setTimeout(poll, 2000);
  }

  // Cancelling throws away the minutes already trained: ask first.
  const cancel = el("cancel-form");
  if (cancel) {
    cancel.addEventListener("submit", (event) => {
      if (!window.confirm(cancel.querySelector("[data-confirm]").dataset.confirm)) event.preventDefault();
    });
  }

  if (!ended.has(box.dataset.status)) {
    const initial = el("run-elapsed").dataset.seconds;
    if (initial !== "") { elapsed = parseFloat(initial); polledAt = Date.now(); }
    window.setInterval(() => {
      if (elapsed !== null) el("run-elapsed").textContent = duration(elapsed + (Date.now() - polledAt) / 1000);
    }, 1000);
    window.setTimeout(poll, 1000);
  }
})();
