// The decision-threshold editor: while a threshold is typed, its curve's marker moves to it.
// Saving is the form's own submit (no script needed for that).
(function () {
  "use strict";
  var form = document.getElementById("thresholds-form");
  if (!form) return;
  form.querySelectorAll("input.threshold-input").forEach(function (input) {
    input.addEventListener("input", function () {
      var row = input.closest("tr");
      var chart = row && row.querySelector("svg.threshold-chart");
      var marker = chart && chart.querySelector(".threshold-marker");
      var value = parseFloat(input.value);
      if (!marker || isNaN(value) || value < 0 || value > 1) return;
      var x = parseFloat(chart.dataset.left) + parseFloat(chart.dataset.span) * value;
      marker.setAttribute("x1", x.toFixed(1));
      marker.setAttribute("x2", x.toFixed(1));
    });
  });
})();
