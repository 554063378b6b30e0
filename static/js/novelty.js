// The look-alike groups page: name a whole group at once through POST reviews/bulk/ (one review
// per image, each with the label_version shown), creating a new class first when asked. Every bulk
// decision is confirmed first with how many images it decides, and the last one can be undone
// (#last-bulk: one more review per image, returning each to what it was).
(function (api) {
  "use strict";

  var root = document.getElementById("novelty");
  if (!root) return;
  var csrfToken = document.querySelector("input[name=csrfmiddlewaretoken]").value;
  var lastBulk = document.getElementById("last-bulk");

  function post(url, body) {
    return api.postJson(url, body, csrfToken);
  }

  function members(group) {
    return group.dataset.members.split(",").map(function (pair) {
      var parts = pair.split(":");
      return { id: parseInt(parts[0], 10), label_version: parseInt(parts[1], 10) };
    });
  }

  function plural(n) {
    return n + (n === 1 ? " image" : " images");
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

  // The words of templates/inspections/_bulk_decision.html, for a decision made on this page.
  function showLast(bulkId, words) {
    if (!lastBulk) return;
    lastBulk.hidden = false;
    lastBulk.dataset.bulkId = bulkId;
    lastBulk.querySelector(".last-bulk-text").textContent = "Your last bulk decision: " + words + ".";
    lastBulk.querySelector(".last-bulk-undo").hidden = false;
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
      if (said.ok) {
        group.classList.add("is-done");
        var words = done(result.body.decided).replace(/\.$/, "");
        showLast(result.body.bulk_id, words.charAt(0).toLowerCase() + words.slice(1));
      } else {
        buttons.forEach(function (b) { b.disabled = false; });
      }
    }).catch(function () {
      status.textContent = api.errorText(null, 0);
      status.classList.add("is-error");
      buttons.forEach(function (b) { b.disabled = false; });
    });
  }

  // Asks before a bulk decision, naming it and its count; go() runs on yes.
  function confirmFirst(group, question, yes, go) {
    var box = group.querySelector(".group-confirm");
    var yesButton = box.querySelector(".group-confirm-yes");
    var noButton = box.querySelector(".group-confirm-no");
    box.querySelector(".group-confirm-text").textContent = question;
    yesButton.textContent = yes;
    box.hidden = false;
    yesButton.focus();
    function close() {
      box.hidden = true;
      yesButton.onclick = noButton.onclick = null;
    }
    yesButton.onclick = function () { close(); go(); };
    noButton.onclick = close;
  }

  root.querySelectorAll(".novelty-group").forEach(function (group) {
    var labelForm = group.querySelector(".group-label");
    var newClassForm = group.querySelector(".group-new-class");
    var excludeForm = group.querySelector(".group-exclude");
    if (!labelForm) return;
    var size = parseInt(group.dataset.size, 10);
    labelForm.addEventListener("submit", function (event) {
      event.preventDefault();
      var label = labelForm.elements.label.value;
      confirmFirst(group, "Label all " + plural(size) + " of this group as " + label + "?", "Yes, label " + size, function () {
        decide(group, { label: label }, function (n) { return "Labelled " + plural(n) + " as " + label + "."; });
      });
    });
    newClassForm.addEventListener("submit", function (event) {
      event.preventDefault();
      var name = newClassForm.elements.name.value;
      confirmFirst(group, "Add the class " + name + " and label all " + plural(size) + " of this group with it?",
        "Yes, add and label " + size, function () {
          var status = group.querySelector(".group-result");
          post(root.dataset.classesApi, { name: name }).then(function (result) {
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
              return "Labelled " + plural(n) + " as " + label + " (a new class).";
            });
          });
        });
    });
    excludeForm.addEventListener("submit", function (event) {
      event.preventDefault();
      var reason = excludeForm.elements.reason.value;
      confirmFirst(group, "Exclude all " + plural(size) + " of this group (" + reason + ")?", "Yes, exclude " + size,
        function () {
          decide(group, { exclude: true, reason: reason }, function (n) { return "Excluded " + plural(n) + " (" + reason + ")."; });
        });
    });
  });

  if (lastBulk) {
    lastBulk.querySelector(".last-bulk-undo").addEventListener("click", function () {
      var button = this;
      var text = lastBulk.querySelector(".last-bulk-text");
      button.disabled = true;
      text.textContent = "Undoing…";
      fetch(root.dataset.undoUrl, {
        method: "POST",
        credentials: "same-origin",
        headers: { "X-CSRFToken": csrfToken, Accept: "application/json" },
        body: new URLSearchParams({ bulk_id: lastBulk.dataset.bulkId }),
      }).then(function (response) {
        return api.readJson(response).then(function (body) {
          if (!response.ok) throw new Error(api.errorText(body, response.status));
          if (!body.failed.length) {
            location.reload();  // the images are back in their groups; the page says it was undone
            return;
          }
          button.hidden = true;
          text.textContent = "Undone for " + plural(body.undone) + "; left as they are, decided again since: " +
            body.failed.map(function (f) { return "image " + f.image; }).join(", ") + ". Reload to see the groups.";
        });
      }).catch(function (error) {
        button.disabled = false;
        text.textContent = "Not undone: " + error.message;
      });
    });
  }
})(window.steelqc);
