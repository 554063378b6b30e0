// The review view's "similar images" strip: the nearest images by the active model's descriptor
// (GET images/{id}/similar/), each linking to its own review view.
(function (api) {
  "use strict";

  var strip = document.getElementById("similar-images");
  if (!strip) return;
  var list = document.getElementById("similar-list");
  var note = document.getElementById("similar-note");
  var data = strip.dataset;

  function reviewUrl(imageId) {
    var url = data.reviewUrl.replace(/0\/$/, imageId + "/");
    return data.query ? url + "?" + data.query : url;
  }

  function item(result) {
    var image = result.image;
    var prediction = image.prediction;
    var li = document.createElement("li");
    li.dataset.imageId = image.id;
    var link = document.createElement("a");
    link.href = reviewUrl(image.id);
    var thumb = document.createElement("img");
    thumb.className = "similar-thumb";
    thumb.src = image.file_url;
    thumb.alt = "Image " + image.id;
    thumb.width = thumb.height = 72;
    thumb.loading = "lazy";
    link.appendChild(thumb);
    var caption = document.createElement("span");
    caption.className = "similar-caption";
    var label = image.excluded ? "excluded" : (image.label || "unlabelled");
    caption.textContent = label + (prediction ? " · model: " + prediction.label : "") + " · d " + result.distance.toFixed(2);
    link.appendChild(caption);
    li.appendChild(link);
    return li;
  }

  fetch(data.similarApi, { credentials: "same-origin", headers: { Accept: "application/json" } })
    .then(function (response) {
      return api.readJson(response).then(function (body) { return { response: response, body: body }; });
    })
    .then(function (result) {
      if (!result.response.ok) {
        note.textContent = api.errorText(result.body, result.response.status);
        return;
      }
      var results = result.body.results;
      results.forEach(function (r) { list.appendChild(item(r)); });
      note.textContent = results.length ? "" : "No other image has been predicted by this model yet.";
      note.hidden = results.length > 0;
    })
    .catch(function () { note.textContent = api.errorText(null, 0); });
})(window.steelqc);
