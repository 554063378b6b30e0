// Live progress of one training run: polls the API until the run has ended.
(function () {
  "use strict";
  const box = document.getElementById("run");
  if (!box) return;
  const ended = new Set(["succeeded", "failed", "cancelled"]);
  const el = (id) => document.getElementById(id);

  function show(run) {
    el("run-progress").value = run.progress;
    el("run-percent").textContent = Math.round(run.progress * 100) + "%";
    el("run-phase").textContent = run.phase || (run.status === "queued" ? "waiting for a training worker" : "–");
    el("run-status").textContent = run.status;
    el("run-status").className = "pill status-" + run.status;
    el("run-log").textContent = run.log || "";
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

  if (!ended.has(box.dataset.status)) window.setTimeout(poll, 1000);
})();
