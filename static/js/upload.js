// The upload page: sends each chosen file to POST /api/v1/images/ (session + CSRF); each file gets
// the result row both upload pages share (static/js/upload_results.js), here with the answer's
// review reasons and class probabilities drawn under it.
(function (api) {
  "use strict";

  var form = document.getElementById("upload-form");
  if (!form) return;
  var input = document.getElementById("upload-files");
  var source = document.getElementById("upload-source");
  var button = document.getElementById("upload-button");
  var message = document.getElementById("upload-message");
  var results = api.uploadResults(document.getElementById("upload-results"), { details: true });
  var apiUrl = form.dataset.apiUrl;
  var csrfToken = form.querySelector("input[name=csrfmiddlewaretoken]").value;
  var PARALLEL_UPLOADS = 3;

  function uploadOne(file) {
    var row = results.add(file.name);
    var data = new FormData();
    data.append("file", file, file.name);
    if (source.value.trim()) data.append("source", source.value.trim());
    return function () {
      row.uploading();
      return fetch(apiUrl, {
        method: "POST",
        body: data,
        credentials: "same-origin",
        headers: { "X-CSRFToken": csrfToken, Accept: "application/json" },
      }).then(function (response) {
        return api.bodyOrError(response).then(function (image) {
          // 201: a new image; 200: the same bytes were uploaded before (that image).
          row.stored(image.id, response.status === 201, image);
        });
      }).catch(function (error) {
        row.refused(error.message);
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
