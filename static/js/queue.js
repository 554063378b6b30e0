// The review queue: Enter (outside form fields and links) starts reviewing at the top.
(function () {
  "use strict";
  document.addEventListener("keydown", function (event) {
    var start = document.getElementById("start-review");
    var tag = (event.target.tagName || "").toLowerCase();
    if (!start || event.key !== "Enter" || ["input", "select", "textarea", "button", "a"].indexOf(tag) >= 0) return;
    event.preventDefault();
    location.assign(start.href);
  });
})();
