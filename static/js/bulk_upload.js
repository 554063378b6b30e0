// Bulk upload: plain images go one per request to POST /api/v1/images/; each zip goes to the
// page's zip endpoint, which unpacks it on the server. XHR (not fetch) for upload progress. Each
// file (each member of a zip) gets the result row of both upload pages (static/js/upload_results.js),
// which shows the model's answer once it is there.
(function (api) {
  "use strict";

  var form = document.getElementById("bulk-form");
  if (!form) return;
  var input = document.getElementById("bulk-files");
  var source = document.getElementById("bulk-source");
  var button = document.getElementById("bulk-button");
  var progress = document.getElementById("bulk-progress");
  var progressText = document.getElementById("bulk-progress-text");
  var message = document.getElementById("bulk-message");
  var summary = document.getElementById("bulk-summary");
  var list = document.getElementById("bulk-results");
  var results = api.uploadResults(list);
  var csrfToken = form.querySelector("input[name=csrfmiddlewaretoken]").value;
  var tally = { created: 0, duplicate: 0, refused: 0, skipped: 0 };

  function isZip(file) {
    return /\.zip$/i.test(file.name) || file.type === "application/zip" || file.type === "application/x-zip-compressed";
  }

  function count(status) {
    tally[status] = (tally[status] || 0) + 1;
    summary.textContent = tally.created + " stored · " + tally.duplicate + " already there · " +
      tally.refused + " refused" + (tally.skipped ? " · " + tally.skipped + " skipped" : "");
  }

  // One result row (static/js/upload_results.js, the upload page's too) for what became of a file.
  function addRow(name, from, status, imageId, reason) {
    var row = results.add(name, from);
    if (status === "created" || status === "duplicate") row.stored(imageId, status === "created");
    else row.refused(reason || "", status);
    count(status);
  }

  function send(url, file, onProgress) {
    return new Promise(function (resolve) {
      var data = new FormData();
      data.append("file", file, file.name);
      if (source.value.trim()) data.append("source", source.value.trim());
      var xhr = new XMLHttpRequest();
      xhr.open("POST", url);
      xhr.setRequestHeader("X-CSRFToken", csrfToken);
      xhr.setRequestHeader("Accept", "application/json");
      xhr.upload.addEventListener("progress", function (event) {
        if (event.lengthComputable) onProgress(event.loaded / event.total);
      });
      xhr.addEventListener("load", function () {
        var body = null;
        try { body = JSON.parse(xhr.responseText); } catch (e) { body = null; }
        resolve({ status: xhr.status, body: body });
      });
      xhr.addEventListener("error", function () { resolve({ status: 0, body: null }); });
      xhr.send(data);
    });
  }

  function errorText(result) {
    return api.errorText(result.body, result.status);
  }

  function uploadImage(file, onProgress) {
    return send(form.dataset.apiUrl, file, onProgress).then(function (result) {
      if (result.status === 201 || result.status === 200) {
        addRow(file.name, "", result.status === 201 ? "created" : "duplicate", result.body.id);
      } else {
        addRow(file.name, "", "refused", null, errorText(result));
      }
    });
  }

  function uploadZip(file, onProgress) {
    return send(form.dataset.zipUrl, file, onProgress).then(function (result) {
      if (result.status !== 200) {
        addRow(file.name, "", "refused", null, errorText(result));
        return;
      }
      result.body.results.forEach(function (member) {
        addRow(member.name, file.name, member.status, member.image_id, member.message);
      });
    });
  }

  form.addEventListener("submit", function (event) {
    event.preventDefault();
    var files = Array.prototype.slice.call(input.files || []);
    if (!files.length) {
      message.textContent = "Choose files or a zip archive first.";
      input.focus();
      return;
    }
    var total = files.reduce(function (sum, file) { return sum + Math.max(file.size, 1); }, 0);
    var done = 0;
    button.disabled = true;
    list.textContent = "";
    tally = { created: 0, duplicate: 0, refused: 0, skipped: 0 };
    function show(fraction) {
      var value = Math.round(100 * Math.min(1, fraction));
      progress.value = value;
      progressText.textContent = value + "%";
    }
    show(0);
    var chain = Promise.resolve();
    files.forEach(function (file, index) {
      chain = chain.then(function () {
        message.textContent = "Uploading " + (index + 1) + " of " + files.length + ": " + file.name +
          (isZip(file) ? " (the server unpacks it after the upload)" : "");
        var size = Math.max(file.size, 1);
        var upload = isZip(file) ? uploadZip : uploadImage;
        return upload(file, function (fraction) { show((done + fraction * size) / total); })
          .then(function () { done += size; show(done / total); });
      });
    });
    chain.then(function () {
      // A zip is one file chosen but many rows: say both, so the count matches the table.
      var rows = list.children.length;
      message.textContent = "Done: " + files.length + (files.length === 1 ? " file" : " files") + " sent, " +
        rows + (rows === 1 ? " result" : " results") + " below.";
      button.disabled = false;
      show(1);
    });
  });
})(window.steelqc);
