// The "No active model yet" banner: follows the training run that will bring the first model and
// reloads the page when it has ended (the banner then says what is true).
(function () {
  "use strict";
  var box = document.getElementById("model-state");
  if (!box || !box.dataset.api) return;
  var ended = { succeeded: true, failed: true, cancelled: true };

  function poll() {
    fetch(box.dataset.api, { headers: { Accept: "application/json" }, credentials: "same-origin" })
      .then(function (response) { return response.ok ? response.json() : null; })
      .then(function (run) {
        if (!run) return;  // no read access or a passing error: the text stays as served
        document.getElementById("model-state-phase").textContent = run.phase || "waiting for a training worker";
        document.getElementById("model-state-percent").textContent = Math.round(run.progress * 100) + "%";
        if (ended[run.status]) { window.location.reload(); return; }
        window.setTimeout(poll, 2000);
      })
      .catch(function () { window.setTimeout(poll, 4000); });
  }

  window.setTimeout(poll, 2000);
})();
