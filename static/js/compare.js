// The comparison page while the worker computes both versions' predictions: asks the API until
// the answer is ready (200), then reloads the page to draw it.
(function () {
  "use strict";
  const box = document.getElementById("comparison");
  if (!box || box.dataset.status !== "computing") return;

  async function poll() {
    try {
      const response = await fetch(box.dataset.api + "?page_size=1", { headers: { Accept: "application/json" }, credentials: "same-origin" });
      if (response.status === 200) { window.location.reload(); return; }
    } catch (error) { /* the next poll tries again */ }
    window.setTimeout(poll, 2000);
  }

  window.setTimeout(poll, 1500);
})();
