// Copy buttons (API tokens: a new secret; People: a password link): a button with
// data-copy-target (the element whose text or value to copy) and data-copy-status (where to say so).
(function () {
  "use strict";
  document.querySelectorAll("button[data-copy-target]").forEach(function (button) {
    var target = document.getElementById(button.dataset.copyTarget);
    var status = document.getElementById(button.dataset.copyStatus);
    if (!target || !status) return;
    var text = function () { return ("value" in target ? target.value : target.textContent).trim(); };
    var select = function () {
      if ("select" in target) { target.select(); return; }
      var range = document.createRange();
      range.selectNodeContents(target);
      var selection = window.getSelection();
      selection.removeAllRanges();
      selection.addRange(range);
    };
    button.addEventListener("click", function () {
      var done = function () { status.textContent = "Copied."; };
      var manual = function () { select(); status.textContent = "Select it and copy it."; };
      if (navigator.clipboard && window.isSecureContext) {
        navigator.clipboard.writeText(text()).then(done, manual);
        return;
      }
      select();
      status.textContent = document.execCommand("copy") ? "Copied." : "Select it and copy it.";
    });
  });
})();
