// The upload page: sends each chosen file to POST /api/v1/images/ (session + CSRF), then polls
// GET /api/v1/images/{id}/ until the prediction lands and draws its class probabilities.
(function (api) {
  "use strict";

  var form = document.getElementById("upload-form");
  if (!form) return;
  var input = document.getElementById("upload-files");
  var source = document.getElementById("upload-source");
  var button = document.getElementById("upload-button");
  var message = document.getElementById("upload-message");
  var results = document.getElementById("upload-results");
  var apiUrl = form.dataset.apiUrl;
  var csrfToken = form.querySelector("input[name=csrfmiddlewaretoken]").value;
  var PARALLEL_UPLOADS = 3;
  var POLL_MS = 500;
  var POLL_LIMIT_MS = 120000;

  function el(tag, className, text) {
    var node = document.createElement(tag);
    if (className) node.className = className;
    if (text !== undefined) node.textContent = text;
    return node;
  }

  function percent(p) {
    return (100 * p).toFixed(1) + "%";
  }

  // Draws what the image already says: its prediction, or that the classifier failed on it.
  // False while its answer is still to come.
  function drawAnswer(entry, image) {
    if (image.prediction) drawPrediction(entry, image);
    else if (image.status === "failed") entry.state("The classifier could not process this image.", "error");
    else return false;
    return true;
  }

  function fileEntry(file) {
    var item = el("li", "upload-item");
    item.appendChild(el("span", "upload-name", file.name));
    var state = el("span", "upload-state", "Waiting to upload…");
    item.appendChild(state);
    var body = el("div", "upload-body");
    item.appendChild(body);
    results.appendChild(item);
    return {
      item: item,
      state: function (text, kind) {
        state.textContent = text;
        item.dataset.state = kind || "";
      },
      body: body,
    };
  }

  function drawPrediction(entry, image) {
    var p = image.prediction;
    entry.state("Predicted", "predicted");
    entry.body.textContent = "";
    var summary = el("p", "prediction-summary");
    summary.appendChild(el("strong", "prediction-label", p.label));
    summary.appendChild(document.createTextNode(" with confidence " + percent(p.confidence) +
      " (model v" + p.model_version_number + ")"));
    if (p.needs_review) summary.appendChild(el("span", "pill pill-warn", "needs review"));
    summary.appendChild(el("span", "muted", " · OOD score " + Number(p.ood_score).toFixed(2)));
    entry.body.appendChild(summary);
    if ((p.review_explanation || []).length) {
      var reasons = el("ul", "review-reasons");
      p.review_explanation.forEach(function (reason) {
        var line = el("li", "");
        line.dataset.reason = reason.code;
        line.appendChild(el("span", "pill pill-warn", reason.code.replace("_", " ")));
        line.appendChild(document.createTextNode(" " + reason.text));
        reasons.appendChild(line);
      });
      entry.body.appendChild(reasons);
    }

    var table = el("table", "probabilities");
    var caption = el("caption", "visually-hidden", "Class probabilities for " + image.original_name);
    table.appendChild(caption);
    var tbody = el("tbody");
    Object.keys(p.probabilities)
      .sort(function (a, b) { return p.probabilities[b] - p.probabilities[a]; })
      .forEach(function (name) {
        var value = p.probabilities[name];
        var row = el("tr", name === p.label ? "top" : "");
        row.appendChild(el("th", "prob-name", name));
        var barCell = el("td", "prob-bar-cell");
        barCell.setAttribute("aria-hidden", "true");
        var bar = el("span", "prob-bar");
        bar.style.width = Math.max(0, Math.min(100, 100 * value)).toFixed(1) + "%";
        barCell.appendChild(bar);
        row.appendChild(barCell);
        row.appendChild(el("td", "prob-value", percent(value)));
        tbody.appendChild(row);
      });
    table.appendChild(tbody);
    entry.body.appendChild(table);
  }

  function poll(entry, url, started) {
    return fetch(url, { headers: { Accept: "application/json" }, credentials: "same-origin" })
      .then(api.bodyOrError)
      .then(function (image) {
        if (drawAnswer(entry, image)) return null;
        if (!form.dataset.modelActive) return null;  // no model yet: "Stored" stays the answer
        if (Date.now() - started > POLL_LIMIT_MS) {
          return entry.state("Stored; still waiting for the classifier — check again later.", "pending");
        }
        return new Promise(function (resolve) { setTimeout(resolve, POLL_MS); })
          .then(function () { return poll(entry, url, started); });
      });
  }

  function uploadOne(file) {
    var entry = fileEntry(file);
    var data = new FormData();
    data.append("file", file, file.name);
    if (source.value.trim()) data.append("source", source.value.trim());
    return function () {
      entry.state("Uploading…", "uploading");
      return fetch(apiUrl, {
        method: "POST",
        body: data,
        credentials: "same-origin",
        headers: { "X-CSRFToken": csrfToken, Accept: "application/json" },
      })
        .then(api.bodyOrError)
        .then(function (image) {
          if (drawAnswer(entry, image)) return null;
          if (form.dataset.modelActive) entry.state("Classifying…", "pending");
          else entry.state("Stored — it will be classified when the first model is ready.", "stored");
          // The answer is awaited in the background: the form is free for the next files at once.
          poll(entry, image.url, Date.now()).catch(function (error) {
            entry.state("Stored; could not fetch the answer: " + error.message, "pending");
          });
          return null;
        })
        .catch(function (error) {
          entry.state("Refused: " + error.message, "error");
        });
    };
  }

  function runAll(tasks) {
    var next = 0;
    function worker() {
      if (next >= tasks.length) return Promise.resolve();
      var task = tasks[next++];
      return task().then(worker);
    }
    var workers = [];
    for (var i = 0; i < Math.min(PARALLEL_UPLOADS, tasks.length); i++) workers.push(worker());
    return Promise.all(workers);
  }

  form.addEventListener("submit", function (event) {
    event.preventDefault();
    var files = Array.prototype.slice.call(input.files || []);
    if (!files.length) {
      message.textContent = "Choose one or more images first.";
      input.focus();
      return;
    }
    message.textContent = "Uploading " + files.length + (files.length === 1 ? " file…" : " files…");
    button.disabled = true;
    runAll(files.map(uploadOne)).then(function () {
      message.textContent = "Sent: " + files.length + (files.length === 1 ? " file." : " files.");
      button.disabled = false;
      form.reset();
    });
  });
})(window.steelqc);
