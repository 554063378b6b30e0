// A decision's "Saved" line outlives the move to the next page: the review view keeps it as it
// leaves (sessionStorage, this tab only) and the page that follows, the next image or the queue,
// shows it in its #saved-note, with an Undo button that takes the decision back (POST
// reviews/{id}/undo/) and returns to the image.
window.steelqc = window.steelqc || {};
(function (api) {
  "use strict";

  var KEY = "steelqc.saved-note";

  // ``undo`` (optional): {url: the API's undo URL for the review, back: the decided image's page}.
  api.savedNoteKeep = function (text, undo) {
    try { sessionStorage.setItem(KEY, JSON.stringify({ text: text, undo: undo || null })); } catch (e) {
      /* storage off: the note is only lost */
    }
  };

  function take() {
    var kept = null;
    try {
      kept = sessionStorage.getItem(KEY);
      sessionStorage.removeItem(KEY);
    } catch (e) { return null; }
    if (!kept) return null;
    try { return JSON.parse(kept); } catch (e) { return { text: kept, undo: null }; }
  }

  function undoButton(node, undo) {
    var button = document.createElement("button");
    button.type = "button";
    button.id = "saved-undo";
    button.className = "saved-undo";
    button.innerHTML = "Undo <kbd>U</kbd>";
    button.addEventListener("click", function () {
      button.disabled = true;
      api.postJson(undo.url, {}, node.dataset.csrf).then(function (result) {
        if (result.response.status === 201) {
          var image = result.body.image;
          api.savedNoteKeep("Undone: image " + image.id + " is back to " + (image.label || "unlabelled") + ".");
          location.assign(undo.back);
          return;
        }
        node.textContent = "Not undone: " + api.errorText(result.body, result.response.status, result.response.statusText);
        node.classList.add("is-error");
      }).catch(function () {
        button.disabled = false;
        node.textContent = "Not undone: " + api.errorText(null, 0);
      });
    });
    return button;
  }

  // Takes the kept note (once) and shows it; the server's own note (a form decision) stays when none was kept.
  api.savedNoteShow = function () {
    var node = document.getElementById("saved-note");
    var kept = take();
    if (node && kept && kept.text) {
      node.textContent = kept.text + " ";
      node.classList.remove("is-error");
      if (kept.undo && node.dataset.csrf) node.appendChild(undoButton(node, kept.undo));
    }
    return kept ? kept.text : null;
  };

  api.savedNoteShow();
})(window.steelqc);
