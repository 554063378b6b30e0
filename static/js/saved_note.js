// A decision's "Saved" line outlives the move to the next page: the review view keeps it as it
// leaves (sessionStorage, this tab only) and the page that follows, the next image or the queue,
// shows it in its #saved-note.
window.steelqc = window.steelqc || {};
(function (api) {
  "use strict";

  var KEY = "steelqc.saved-note";

  api.savedNoteKeep = function (text) {
    try { sessionStorage.setItem(KEY, text); } catch (e) { /* storage off: the note is only lost */ }
  };

  // Takes the kept note (once) and shows it; the server's own note (a form decision) stays when none was kept.
  api.savedNoteShow = function () {
    var node = document.getElementById("saved-note");
    var text = null;
    try {
      text = sessionStorage.getItem(KEY);
      sessionStorage.removeItem(KEY);
    } catch (e) { text = null; }
    if (node && text) node.textContent = text;
    return text;
  };

  api.savedNoteShow();
})(window.steelqc);
