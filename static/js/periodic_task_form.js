// The admin's periodic task form (django-celery-beat): shows what the chosen crontab means.
// Moved out of the package's template so the Content-Security-Policy needs no inline script.
(function () {
  "use strict";
  var $ = django.jQuery;
  var script = document.getElementById("periodic-task-overrides");
  var readable = JSON.parse(document.getElementById("readable-crontabs").textContent);
  var originalHelp = script.dataset.crontabHelp || "";
  $(".field-crontab_translation").hide();
  $(".field-crontab").change(function () {
    var help = document.querySelector(".field-crontab .help");
    if (help) {
      help.textContent = originalHelp + " Translation: " + (readable[$("#id_crontab").val()] || "");
    }
  });
})();
