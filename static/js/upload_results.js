// The result row of both upload pages: one per file, with its thumbnail, its name (and the zip it
// came in), what became of it ("Stored as image N", "Already there (image N)", "Refused: …"), the
// model's answer (label and confidence, or where it stands) and a link to its review view. Stored
// images without an answer yet are asked after together, ANSWERS_MAX at a time, from the pages'
// answers endpoint (upload/answers/?ids=…) until each has one.
// Load after api.js; the list element carries the endpoints:
//   data-answers-url, data-answers-max, data-file-url and data-review-url (patterns with 0 for the
//   image id; no review link without data-review-url), data-model-active (present: a model is live).
window.steelqc = window.steelqc || {};
(function (api) {
  "use strict";

  var POLL_MS = 1000;
  var WAIT_LIMIT_MS = 120000;

  function el(tag, className, text) {
    var node = document.createElement(tag);
    if (className) node.className = className;
    if (text !== undefined) node.textContent = text;
    return node;
  }

  function percent(p) {
    return (100 * p).toFixed(1) + "%";
  }

  function withId(pattern, id) {
    return pattern.replace("/0/", "/" + id + "/");  // the first /0/ of the pattern is the id's place
  }

  function probabilityTable(p, name) {
    var table = el("table", "probabilities");
    table.appendChild(el("caption", "visually-hidden", "Class probabilities for " + name));
    var tbody = el("tbody");
    Object.keys(p.probabilities)
      .sort(function (a, b) { return p.probabilities[b] - p.probabilities[a]; })
      .forEach(function (label) {
        var value = p.probabilities[label];
        var row = el("tr", label === p.label ? "top" : "");
        row.appendChild(el("th", "prob-name", label));
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
    return table;
  }

  // options.details: also draw the review reasons and the class probabilities under the row.
  api.uploadResults = function (list, options) {
    var data = list.dataset;
    var details = !!(options && options.details);
    var batch = parseInt(data.answersMax, 10) || 100;
    var waiting = new Map();  // image id -> [row, ...] still without an answer, in the order to ask
    var timer = null;

    function poll() {
      timer = null;
      var ids = Array.from(waiting.keys()).slice(0, batch);
      if (!ids.length) return;
      fetch(data.answersUrl + "?ids=" + ids.join(","), { credentials: "same-origin", headers: { Accept: "application/json" } })
        .then(api.bodyOrError)
        .then(function (body) {
          body.images.forEach(function (image) {
            (waiting.get(image.id) || []).forEach(function (row) { row.answer(image); });
          });
        })
        .catch(function () { /* asked again at the next turn */ })
        .then(function () {
          // The ones just asked after that still wait go to the back: a long list is asked after in turns.
          var now = Date.now();
          ids.forEach(function (id) {
            var rows = (waiting.get(id) || []).filter(function (row) { return !row.done && !row.expired(now); });
            waiting.delete(id);
            if (rows.length) waiting.set(id, rows);
          });
          schedule();
        });
    }

    function schedule() {
      if (!timer && waiting.size) timer = setTimeout(poll, POLL_MS);
    }

    function add(name, from) {
      var item = el("li", "upload-item");
      item.dataset.state = "waiting";
      var thumb = el("span", "upload-thumb upload-thumb-empty");
      item.appendChild(thumb);
      var main = el("div", "upload-main");
      var head = el("p", "upload-head");
      head.appendChild(el("span", "upload-name", name));
      if (from) head.appendChild(el("span", "upload-from muted", "in " + from));
      main.appendChild(head);
      var state = el("span", "upload-state", "Waiting to upload…");
      var answer = el("span", "upload-answer");
      var line = el("p", "upload-line");
      line.appendChild(state);
      line.appendChild(answer);
      main.appendChild(line);
      var body = el("div", "upload-body");
      main.appendChild(body);
      item.appendChild(main);
      list.appendChild(item);

      var row = { done: false, item: item, started: 0 };

      function setState(text, kind) {
        state.textContent = text;
        item.dataset.state = kind;
      }

      function setAnswer(text, kind) {
        answer.textContent = text;
        item.dataset.answer = kind;
      }

      row.uploading = function () { setState("Uploading…", "uploading"); };

      row.refused = function (message, kind) {
        setState((kind === "skipped" ? "Skipped: " : "Refused: ") + message, kind || "refused");
        row.done = true;
      };

      // The image the file became (created) or already was (a known file): its id, and, when the
      // upload's answer carried it, the image itself.
      row.stored = function (id, created, image) {
        item.dataset.imageId = id;
        setState(created ? "Stored as image " + id : "Already there (image " + id + ")", created ? "stored" : "duplicate");
        var picture = el("img", "upload-thumb");
        picture.src = withId(data.fileUrl, id);
        picture.alt = "";
        picture.width = 48;
        picture.height = 48;
        picture.loading = "lazy";
        if (data.reviewUrl) {
          var link = el("a", "upload-thumb-link");
          link.href = withId(data.reviewUrl, id);
          link.appendChild(picture);
          picture = link;
          var review = el("a", "upload-review", "Review image " + id);
          review.href = withId(data.reviewUrl, id);
          line.appendChild(review);
        }
        item.replaceChild(picture, thumb);
        if (image && row.answer(image)) return;
        if (!data.modelActive && created) {  // nothing will answer before a model is live
          setAnswer("It will be classified when the first model is ready.", "no-model");
          return;
        }
        setAnswer(created ? "Classifying…" : "", "pending");
        row.started = Date.now();
        if (!waiting.has(id)) waiting.set(id, []);
        waiting.get(id).push(row);
        schedule();
      };

      // Whether to stop asking after this row's answer: a known file without one is asked after
      // once when no model is live, any other row for WAIT_LIMIT_MS.
      row.expired = function (now) {
        if (!data.modelActive) return true;
        if (now - row.started <= WAIT_LIMIT_MS) return false;
        setAnswer("Still waiting for the classifier — look again later.", "pending");
        return true;
      };

      // Draws the image's answer; false while there is none yet.
      row.answer = function (image) {
        var p = image.prediction;
        if (!p) {
          if (image.status !== "failed") return false;
          setAnswer("The classifier could not process this image.", "failed");
          row.done = true;
          return true;
        }
        answer.textContent = "";
        item.dataset.answer = "predicted";
        if (p.label !== null) {
          answer.appendChild(el("strong", "prediction-label", p.label));
          answer.appendChild(document.createTextNode(" " + percent(p.confidence)));
        } else {
          answer.appendChild(el("strong", "prediction-label", "no class"));  // an anomaly model answered alone
        }
        if (p.anomaly_score !== null && p.anomaly_score !== undefined) {
          answer.appendChild(el("span", "anomaly-score", " · anomaly score " + p.anomaly_score.toFixed(2)));
        }
        answer.appendChild(el("span", "muted", " (model v" + p.model_version_number + ")"));
        if (p.needs_review) answer.appendChild(el("span", "pill pill-warn", "needs review"));
        if (image.label) answer.appendChild(el("span", "muted", " · labelled " + image.label));
        if (details) {
          body.textContent = "";
          if ((p.review_explanation || []).length) {
            var reasons = el("ul", "review-reasons");
            p.review_explanation.forEach(function (reason) {
              var entry = el("li", "");
              entry.dataset.reason = reason.code;
              entry.appendChild(el("span", "pill pill-warn", reason.code.replace("_", " ")));
              entry.appendChild(document.createTextNode(" " + reason.text));
              reasons.appendChild(entry);
            });
            body.appendChild(reasons);
          }
          body.appendChild(el("p", "muted small", "OOD score " + Number(p.ood_score).toFixed(2)));
          body.appendChild(probabilityTable(p, name));
        }
        row.done = true;
        return true;
      };

      return row;
    }

    return { add: add };
  };
})(window.steelqc);
