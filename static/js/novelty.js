// The look-alike groups page: name a whole group at once through POST reviews/bulk/ (one review
// per image, each with the label_version shown), creating a new class first when asked.
(function (api) {
  "use strict";

  var root = document.getElementById("novelty");
  if (!root) return;
  var csrfToken = document.querySelector("input[name=csrfmiddlewaretoken]").value;

  function post(url, body) {
    return api.postJson(url, body, csrfToken);
  }

  function members(group) {
    return group.dataset.members.split(",").map(function (pair) {
      var parts = pair.split(":");
      return { id: parseInt(parts[0], 10), label_version: parseInt(parts[1], 10) };
    });
  }

  function outcome(result, done) {
    var body = result.body || {};
    var results = body.results || (body.error && body.error.details && body.error.details.results) || [];
    var failed = results.filter(function (r) { return !r.ok; });
    var text = result.response.ok ? done(body.decided) : api.errorText(result.body, result.response.status);
    if (failed.length) {
      text += " Not decided: " + failed.map(function (r) { return "image " + r.image + " (" + r.error.message + ")"; }).join("; ");
    }
    return { text: text, ok: result.response.ok, failed: failed.length };
  }

  function decide(group, decision, done) {
    var status = group.querySelector(".group-result");
    var buttons = group.querySelectorAll("button");
    buttons.forEach(function (b) { b.disabled = true; });
    status.textContent = "Saving…";
    var body = Object.assign({ images: members(group) }, decision);
    return post(root.dataset.bulkApi, body).then(function (result) {
      var said = outcome(result, done);
      status.textContent = said.text;
      status.classList.toggle("is-error", !said.ok || said.failed > 0);
      if (said.ok) group.classList.add("is-done");
      else buttons.forEach(function (b) { b.disabled = false; });
    }).catch(function () {
      status.textContent = api.errorText(null, 0);
      status.classList.add("is-error");
      buttons.forEach(function (b) { b.disabled = false; });
    });
  }

  root.querySelectorAll(".novelty-group").forEach(function (group) {
    var labelForm = group.querySelector(".group-label");
    var newClassForm = group.querySelector(".group-new-class");
    var excludeForm = group.querySelector(".group-exclude");
    if (!labelForm) return;
    labelForm.addEventListener("submit", function (event) {
      event.preventDefault();
      var label = labelForm.elements.label.value;
      decide(group, { label: label }, function (n) { return "Labelled " + n + " image(s) as " + label + "."; });
    });
    newClassForm.addEventListener("submit", function (event) {
      event.preventDefault();
      var status = group.querySelector(".group-result");
      post(root.dataset.classesApi, { name: newClassForm.elements.name.value }).then(function (result) {
        if (!result.response.ok) {
          status.textContent = api.errorText(result.body, result.response.status);
          status.classList.add("is-error");
          return;
        }
        var label = result.body.name;
        document.querySelectorAll(".group-label select").forEach(function (select) {
          var option = document.createElement("option");
          option.value = option.textContent = label;
          select.appendChild(option);
        });
        return decide(group, { label: label }, function (n) {
          return "New class " + label + ": labelled " + n + " image(s).";
        });
      });
    });
    excludeForm.addEventListener("submit", function (event) {
      event.preventDefault();
      decide(group, { exclude: true, reason: excludeForm.elements.reason.value },
        function (n) { return "Excluded " + n + " image(s)."; });
    });
  });
})(window.steelqc);
