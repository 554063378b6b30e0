// The review view: keyboard-first labelling through the REST API (session + CSRF).
// 0 no defect; 1..9 (then letters) label with the keyed class; X exclude / include again; Enter/Space confirm the prediction; S/→ skip;
// ← back; H heatmap; M anomaly map; +/− zoom; [/] contrast; R reset the view; N new class; Q queue. The keys for the defect
// boxes (B, A, E and, while a box is selected, the label keys and arrows) live in static/js/boxes.js.
(function (api) {
  "use strict";

  var root = document.getElementById("review");
  if (!root) return;
  var data = root.dataset;
  var canLabel = data.canLabel === "true";
  var csrfToken = root.querySelector("input[name=csrfmiddlewaretoken]").value;
  var image = document.getElementById("review-image");
  var overlay = document.getElementById("heatmap-overlay");
  var stage = document.getElementById("viewer-stage");
  var viewer = document.getElementById("viewer");
  var zoomInput = document.getElementById("zoom");
  var contrastInput = document.getElementById("contrast");
  var heatmapButton = document.getElementById("heatmap-toggle");
  var anomalyOverlay = document.getElementById("anomaly-overlay");
  var anomalyButton = document.getElementById("anomaly-toggle");
  var decideForm = document.getElementById("decide-form");
  var newClassForm = document.getElementById("new-class-form");
  var excludeForm = document.getElementById("exclude-form");
  var includeForm = document.getElementById("include-form");
  var version = parseInt(data.labelVersion, 10);
  var busy = false;

  var say = api.messageLine(document.getElementById("review-message"));

  function apiPost(url, body) {
    return api.postJson(url, body, csrfToken);
  }

  function errorMessage(result) {
    return api.errorText(result.body, result.response.status);
  }

  // --- Counts and history ----------------------------------------------------------------

  function refreshCounts() {
    return fetch(data.countsUrl, { credentials: "same-origin", headers: { Accept: "application/json" } })
      .then(function (response) { return response.ok ? response.json() : null; })
      .then(function (counts) {
        if (!counts) return;
        Object.keys(counts).forEach(function (key) {
          var node = document.querySelector('#queue-counts [data-count="' + key + '"] strong');
          if (node) node.textContent = counts[key];
        });
      })
      .catch(function () { /* the counts are a convenience; the next page shows them anyway */ });
  }

  function cell(text) {
    var td = document.createElement("td");
    td.textContent = text;
    return td;
  }

  function showLabel(label, labelVersion) {
    version = labelVersion;
    document.getElementById("label-version").textContent = version;
    document.getElementById("current-label").textContent = label || "unlabelled";
    Array.prototype.forEach.call(document.querySelectorAll("input[name=expected_version]"), function (hidden) {
      hidden.value = version;
    });
  }

  function showExclusion(excluded, reason) {
    var note = document.getElementById("excluded-note");
    note.hidden = !excluded;
    document.getElementById("exclusion-reason").textContent = reason || "";
    if (excludeForm) excludeForm.hidden = excluded;
    if (includeForm) includeForm.hidden = !excluded;
  }

  function showState(detail) {
    showLabel(detail.label, detail.label_version);
    showExclusion(detail.excluded, detail.exclusion_reason);
    var body = document.querySelector("#history tbody");
    body.textContent = "";
    (detail.reviews || []).forEach(function (review) {
      var row = document.createElement("tr");
      row.appendChild(cell(review.created_at.replace("T", " ").slice(0, 19)));
      row.appendChild(cell(review.reviewer));
      var change = review.decision === "exclude" ? "excluded: " + review.reason
        : review.decision === "include" ? "included again"
        : review.decision === "undo" ? "undone: back to " + (review.label || "unlabelled")
        : (review.previous_label || "unlabelled") + " → " + review.label;
      row.appendChild(cell(change));
      row.appendChild(cell(review.prediction ? "#" + review.prediction : "–"));
      body.appendChild(row);
    });
  }

  function reloadState() {
    return fetch(data.imageApi, { credentials: "same-origin", headers: { Accept: "application/json" } })
      .then(function (response) { return response.ok ? response.json() : null; })
      .then(function (detail) { if (detail) showState(detail); });
  }

  // --- Decisions -------------------------------------------------------------------------

  // Box changes made on this page are stored before it is left (static/js/boxes.js): when one
  // failed, or a drawn box still needs its class, the page stays and its message says why.
  function leave(go) {
    var settled = api.boxesSettled ? api.boxesSettled() : Promise.resolve(true);
    return settled.then(function (ok) {
      if (ok) go();
      return ok;
    });
  }

  function goNext() {
    return leave(function () { location.assign(data.nextUrl || data.queueUrl); });
  }

  function goBack() {
    return leave(function () {
      if (document.referrer && document.referrer.indexOf(location.origin + "/review/") === 0) history.back();
      else if (data.previousUrl) location.assign(data.previousUrl);
      else location.assign(data.queueUrl);
    });
  }

  function decide(label) {
    if (!label) return;
    send({ label: label }, "“" + label + "”", "labelled " + label + ".");
  }

  function exclude(reason) {
    if (!reason) { say("Say why the image is excluded.", true); return; }
    send({ exclude: true, reason: reason }, "the exclusion", "excluded (" + reason + ").");
  }

  function include() {
    send({ exclude: false }, "the inclusion", "included again.");
  }

  function send(decision, what, done) {
    if (!canLabel || busy) return;
    busy = true;
    say("Saving " + what + "…");
    decision.expected_version = version;
    apiPost(data.reviewApi, decision).then(function (result) {
      if (result.response.status === 201) {
        // Said here and, kept, on the page that follows (static/js/saved_note.js): the move is at once.
        var saved = "Saved: image " + data.imageId + " " + done;
        say(saved);
        showState(result.body.image);
        api.savedNoteKeep(saved, {
          url: data.undoApi.replace(/0\/undo\/$/, result.body.review.id + "/undo/"),
          back: location.href,
        });
        return refreshCounts().then(goNext).then(function (left) {
          if (left) return;
          busy = false;
          api.savedNoteShow();  // the page stays (a box change to settle): the note is for this page
        });
      }
      busy = false;
      if (result.response.status === 409) {
        var current = (result.body.error.details || {});
        say("Not saved: someone else decided meanwhile. The image is now “" + (current.label || "unlabelled") +
          "” (version " + current.label_version + "). Press a key again to overrule it, or S to skip.", true);
        showLabel(current.label, current.label_version);
        return reloadState();
      }
      say("Not saved: " + errorMessage(result), true);
    }).catch(function (error) {
      busy = false;
      say("Not saved: " + error.message, true);
    });
  }

  if (decideForm) {
    decideForm.addEventListener("submit", function (event) {
      event.preventDefault();
      var button = event.submitter || document.activeElement;
      if (button && button.dataset.label) decide(button.dataset.label);
    });
  }

  if (excludeForm) {
    excludeForm.addEventListener("submit", function (event) {
      event.preventDefault();
      exclude(document.getElementById("exclude-reason").value.trim());
    });
  }
  if (includeForm) {
    includeForm.addEventListener("submit", function (event) {
      event.preventDefault();
      include();
    });
  }

  if (newClassForm) {
    newClassForm.addEventListener("submit", function (event) {
      event.preventDefault();
      var input = document.getElementById("new-class-name");
      var name = input.value.trim();
      if (!name) return;
      apiPost(data.classesApi, { name: name }).then(function (result) {
        if (result.response.status === 201) {
          say("Added class “" + result.body.name + "”.");
          decide(result.body.name);
        } else {
          say("Class not added: " + errorMessage(result), true);
        }
      });
    });
  }

  // --- Viewer: zoom, contrast, heatmap ----------------------------------------------------

  function applyView() {
    var zoom = parseFloat(zoomInput.value);
    stage.style.width = (100 * zoom) + "%";
    image.style.filter = "contrast(" + contrastInput.value + ")";
    document.getElementById("zoom-value").textContent = zoom + "×";
    document.getElementById("contrast-value").textContent = parseFloat(contrastInput.value).toFixed(1);
    viewer.classList.toggle("zoomed", zoom > 1);
  }

  function step(input, delta) {
    var value = Math.min(parseFloat(input.max), Math.max(parseFloat(input.min), parseFloat(input.value) + delta));
    input.value = String(Math.round(value * 100) / 100);
    applyView();
  }

  function toggleHeatmap() {
    if (!overlay || !data.heatmapUrl) return;
    if (!overlay.getAttribute("src")) {
      say("Computing the heatmap…");
      overlay.addEventListener("load", function () { say("Heatmap: where the model found its evidence."); }, { once: true });
      overlay.addEventListener("error", function () { say("The heatmap could not be computed.", true); }, { once: true });
      overlay.setAttribute("src", data.heatmapUrl);
    }
    overlay.hidden = !overlay.hidden;
    if (heatmapButton) heatmapButton.setAttribute("aria-pressed", String(!overlay.hidden));
  }

  function toggleAnomalyMap() {
    if (!anomalyOverlay || !data.anomalyMapUrl) return;
    if (!anomalyOverlay.getAttribute("src")) {
      say("Drawing the anomaly map…");
      anomalyOverlay.addEventListener("load", function () {
        say("Anomaly map: where the surface is unlike the good steel the anomaly model learnt (clear where it is like good, yellow-green at the threshold, red beyond).");
      }, { once: true });
      anomalyOverlay.addEventListener("error", function () { say("The anomaly map could not be drawn.", true); }, { once: true });
      anomalyOverlay.setAttribute("src", data.anomalyMapUrl);
    }
    anomalyOverlay.hidden = !anomalyOverlay.hidden;
    if (anomalyButton) anomalyButton.setAttribute("aria-pressed", String(!anomalyOverlay.hidden));
  }

  zoomInput.addEventListener("input", applyView);
  contrastInput.addEventListener("input", applyView);
  if (heatmapButton) heatmapButton.addEventListener("click", toggleHeatmap);
  if (anomalyButton) anomalyButton.addEventListener("click", toggleAnomalyMap);

  // --- Keyboard ----------------------------------------------------------------------------

  var buttonsByKey = {};
  Array.prototype.forEach.call(document.querySelectorAll(".label-button"), function (button) {
    if (button.dataset.key) buttonsByKey[button.dataset.key] = button;
  });

  document.addEventListener("keydown", function (event) {
    if (event.ctrlKey || event.metaKey || event.altKey) return;
    var tag = (event.target.tagName || "").toLowerCase();
    if (["input", "textarea", "select"].indexOf(tag) >= 0 && event.target.type !== "range") {
      if (event.key === "Escape") event.target.blur();
      return;
    }
    if (event.target.type === "range" && event.key.indexOf("Arrow") === 0) return;  // the slider's own keys
    var onControl = ["button", "a", "summary"].indexOf(tag) >= 0;
    var key = event.key;
    if (buttonsByKey[key]) {
      event.preventDefault();
      decide(buttonsByKey[key].dataset.label);
    } else if ((key === "Enter" || key === " ") && !onControl) {
      event.preventDefault();
      if (!canLabel) return;
      if (data.predictedLabel) decide(data.predictedLabel);
      else say("There is no prediction to confirm; choose a class with its number.", true);
    } else if (key === "s" || key === "S" || key === "ArrowRight") {
      event.preventDefault();
      goNext();
    } else if (key === "ArrowLeft") {
      event.preventDefault();
      goBack();
    } else if (key === "h" || key === "H") {
      toggleHeatmap();
    } else if (key === "m" || key === "M") {
      toggleAnomalyMap();
    } else if (key === "+" || key === "=") {
      step(zoomInput, 0.5);
    } else if (key === "-" || key === "_") {
      step(zoomInput, -0.5);
    } else if (key === "]") {
      step(contrastInput, 0.2);
    } else if (key === "[") {
      step(contrastInput, -0.2);
    } else if (key === "r" || key === "R") {
      zoomInput.value = "1";
      contrastInput.value = "1";
      applyView();
    } else if ((key === "n" || key === "N") && newClassForm) {
      event.preventDefault();
      document.getElementById("new-class").open = true;
      document.getElementById("new-class-name").focus();
    } else if ((key === "x" || key === "X") && canLabel) {
      event.preventDefault();
      if (includeForm && !includeForm.hidden) include();
      else if (excludeForm) document.getElementById("exclude-reason").focus();
    } else if ((key === "u" || key === "U") && canLabel) {
      // Take back the decision just saved (the note's Undo) or the image's latest (the history's).
      var savedUndo = document.getElementById("saved-undo");
      var historyUndo = document.getElementById("history-undo");
      if (savedUndo) savedUndo.click();
      else if (historyUndo) leave(function () { historyUndo.submit(); });
      else say("Nothing here to undo.", true);
    } else if (key === "q" || key === "Q") {
      leave(function () { location.assign(data.queueUrl); });
    }
  });

  // --- Preload the next image so the next page shows at once ------------------------------
  window.addEventListener("load", function () {
    if (data.nextFileUrl) new Image().src = data.nextFileUrl;
  });
  applyView();
})(window.steelqc);
