// Helpers shared by the pages' scripts, most of them for talking to the REST API (load before them).
window.steelqc = window.steelqc || {};
(function (api) {
  "use strict";

  // What to tell a person about a failed request: the API's error message
  // ({"error": {"code", "message", "details"}}) with any per-file details, else the status.
  api.errorText = function (body, status, statusText) {
    if (body && body.error) {
      var text = body.error.message;
      var details = body.error.details;
      if (details && details.file) text += " " + [].concat(details.file).join(" ");
      return text;
    }
    if (!status) return "The connection failed.";
    return "The server answered " + status + (statusText ? " " + statusText : "") + ".";
  };

  // The response's JSON body, or null when it has none (an HTML error page, an empty 204).
  api.readJson = function (response) {
    return response.json().catch(function () { return null; });
  };

  // The response's JSON body; for a refusal, an Error with the API's words for it instead.
  api.bodyOrError = function (response) {
    return api.readJson(response).then(function (body) {
      if (!response.ok) throw new Error(api.errorText(body, response.status, response.statusText));
      return body;
    });
  };

  // A say(text, isError) for a page's message line `node`: shows the text, styled as an error when asked.
  api.messageLine = function (node) {
    return function (text, isError) {
      node.textContent = text;
      node.classList.toggle("is-error", !!isError);
    };
  };

  // POST a JSON body with the page's CSRF token; resolves to {response, body}.
  api.postJson = function (url, body, csrfToken) {
    return fetch(url, {
      method: "POST",
      credentials: "same-origin",
      headers: { "Content-Type": "application/json", Accept: "application/json", "X-CSRFToken": csrfToken },
      body: JSON.stringify(body),
    }).then(function (response) {
      return api.readJson(response).then(function (json) { return { response: response, body: json }; });
    });
  };
})(window.steelqc);
