// The training list: rows of queued and running runs follow their run's status, progress and
// phase from the API; the page reloads when one of them ends (its version and result appear).
(function () {
  "use strict";
  var ended = { succeeded: true, failed: true, cancelled: true };
  var rows = Array.prototype.filter.call(document.querySelectorAll("tr[data-run][data-api]"), function (row) {
    return !ended[row.dataset.status];
  });
  if (!rows.length) return;

  function field(row, name) { return row.querySelector('[data-field="' + name + '"]'); }

  function show(row, run) {
    field(row, "progress").value = run.progress;
    field(row, "percent").textContent = Math.round(run.progress * 100) + "%";
    field(row, "phase").textContent = run.phase || "–";
    field(row, "status").textContent = run.status;
    field(row, "status").className = "pill status-" + run.status;
  }

  function poll() {
    Promise.all(rows.map(function (row) {
      return fetch(row.dataset.api, { headers: { Accept: "application/json" }, credentials: "same-origin" })
        .then(function (response) { return response.ok ? response.json() : null; })
        .then(function (run) {
          if (run) show(row, run);
          return run && ended[run.status];
        });
    })).then(function (finished) {
      if (finished.some(Boolean)) { window.location.reload(); return; }
      window.setTimeout(poll, 2000);
    }, function () { window.setTimeout(poll, 4000); });
  }

  window.setTimeout(poll, 2000);
})();
