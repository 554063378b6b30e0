// The API tokens page: copy a new token's secret to the clipboard.
(function () {
  "use strict";
  var button = document.getElementById("token-copy");
  if (!button) return;
  var status = document.getElementById("token-copy-status");
  button.addEventListener("click", function () {
    var secret = document.getElementById(button.dataset.copyTarget).textContent.trim();
    var done = function () { status.textContent = "Copied."; };
    if (navigator.clipboard && window.isSecureContext) {
      navigator.clipboard.writeText(secret).then(done, function () { status.textContent = "Select the secret and copy it."; });
      return;
    }
    var range = document.createRange();
    range.selectNodeContents(document.getElementById(button.dataset.copyTarget));
    var selection = window.getSelection();
    selection.removeAllRanges();
    selection.addRange(range);
    status.textContent = document.execCommand("copy") ? "Copied." : "Select the secret and copy it.";
  });
})();
