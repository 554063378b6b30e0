// The review view's defect boxes: an SVG layer over the image with the image's boxes (solid, in
// the class colour, named) and the active model version's (dashed, with their score). The model's
// boxes scoring under their class's box threshold (above_threshold false) are hidden, counted, and
// shown faintly on request; "accept the model's boxes" never takes them.
// Pointer: drag on the image draws a box, drag a box moves it, drag a corner resizes it.
// Keys: B boxes on/off · E new box · Tab selects · the label keys (1..9) set the selected box's
// class · arrows move, Shift+arrows resize · Delete/Backspace deletes · Esc/Enter done · A
// accepts the model's boxes. Boxes are fractions of the image (SVG percentages), and every
// change goes to images/{id}/boxes/ with the boxes_version seen, one request at a time.
(function (api) {
  "use strict";

  var svg = document.getElementById("box-layer");
  var root = document.getElementById("review");
  if (!svg || !root) return;
  var SVG_NS = "http://www.w3.org/2000/svg";
  var PALETTE = ["#e6194b", "#3cb44b", "#ffe119", "#4363d8", "#f58231", "#42d4f4", "#f032e6", "#bfef45",
    "#fabed4", "#dcbeff", "#9a6324", "#aaffc3"];
  var STEP = 0.01;        // arrow keys move or resize by 1 % of the image
  var MIN_SIZE = 0.01;    // the smallest box; a shorter drag is a click
  var FLUSH_MS = 500;     // keyboard moves are sent once the keys rest
  var CORNERS = ["nw", "ne", "sw", "se"];
  var ARROWS = { ArrowLeft: [-1, 0], ArrowRight: [1, 0], ArrowUp: [0, -1], ArrowDown: [0, 1] };

  var url = svg.dataset.boxesApi;
  var canEdit = root.dataset.canLabel === "true";
  var csrfToken = root.querySelector("input[name=csrfmiddlewaretoken]").value;
  var toggleButton = document.getElementById("boxes-toggle");
  var acceptButton = document.getElementById("boxes-accept");
  var list = document.getElementById("box-list");
  var summary = document.getElementById("box-summary");
  var hiddenNote = document.getElementById("boxes-hidden");
  var hiddenCount = document.getElementById("boxes-hidden-count");
  var hiddenToggle = document.getElementById("boxes-hidden-toggle");
  var showBelow = false;  // the boxes under their class's box threshold, shown on request
  var classNames = (svg.dataset.classes || "").split(",").filter(Boolean);
  var labelByKey = {};
  Array.prototype.forEach.call(document.querySelectorAll(".label-button[data-key]"), function (button) {
    if (button.dataset.key && classNames.indexOf(button.dataset.label) >= 0) labelByKey[button.dataset.key] = button.dataset.label;
  });

  var state = { version: null, boxes: [], predicted: [] };
  var selected = null;   // a box id, "draft", or null
  var draft = null;      // a drawn box waiting for its class: {box, saving}
  var dirty = {};        // box id -> geometry changed here and not yet confirmed by the server
  var removed = {};      // box id -> true while its delete is on its way
  var flushTimer = null;
  var queue = [];        // {changes, done} to send, in order, one at a time
  var sending = false;
  var outcome = true;    // false once a send failed since the last settle() began
  var waiters = [];
  var drag = null;
  var rendering = false;
  var loading = false;

  // --- Small helpers ---------------------------------------------------------------------

  var say = api.messageLine(document.getElementById("review-message"));  // the line review.js says things on too

  function clamp(value, low, high) { return Math.min(high, Math.max(low, value)); }

  function colour(label) {
    var index = classNames.indexOf(label);
    return index < 0 ? "#9aa3ae" : PALETTE[index % PALETTE.length];
  }

  function percent(value) { return (Math.round(value * 1e6) / 1e4) + "%"; }

  function element(name, attributes, parent) {
    var node = document.createElementNS(SVG_NS, name);
    Object.keys(attributes).forEach(function (key) { node.setAttribute(key, attributes[key]); });
    if (parent) parent.appendChild(node);
    return node;
  }

  function findBox(id) {
    for (var i = 0; i < state.boxes.length; i++) if (state.boxes[i].id === id) return state.boxes[i];
    return null;
  }

  function geometry(id) {
    if (id === "draft") return draft ? draft.box : null;
    if (dirty[id]) return dirty[id];
    var box = findBox(id);
    return box ? box.box : null;
  }

  function setGeometry(id, box) {
    if (id === "draft") draft.box = box;
    else dirty[id] = box;
  }

  function describe(box) {
    if (box.source === "model") return "model v" + box.model_version + (box.created_by ? ", accepted by " + box.created_by : "");
    if (box.source === "import") return "dataset import";
    return "drawn by " + (box.created_by || "someone");
  }

  // Where a box is, for people: fractions of the image rounded to two places (stored values
  // such as 0.2999999890618 read 0.30).
  function position(box) {
    function fixed(value) { return Number(value).toFixed(2); }
    return "x " + fixed(box[0]) + "–" + fixed(box[2]) + ", y " + fixed(box[1]) + "–" + fixed(box[3]);
  }

  function pending() {
    return sending || queue.length > 0 || Object.keys(dirty).length > 0 || draft !== null;
  }

  // The model's boxes a person may accept: not accepted yet, and at or above their class's box
  // threshold (an answer without the field, from before box thresholds, counts as above).
  function offered() {
    return state.predicted.filter(function (found) { return !found.accepted && found.above_threshold !== false; });
  }

  function belowThreshold() {
    return state.predicted.filter(function (found) { return !found.accepted && found.above_threshold === false; });
  }

  // --- Drawing the layer and the list --------------------------------------------------------

  function frame(group, box, stroke) {
    var attributes = { "class": "defect-box-frame", x: percent(box[0]), y: percent(box[1]),
      width: percent(box[2] - box[0]), height: percent(box[3] - box[1]) };
    if (stroke) attributes.stroke = stroke;
    element("rect", attributes, group);
  }

  function name(group, text, x, y, dy, fill) {
    var node = element("text", { "class": "defect-box-name", x: percent(x), y: percent(y), dx: "4", dy: dy, fill: fill }, group);
    node.textContent = text;
  }

  function drawPredicted(found) {
    var below = found.above_threshold === false;
    var group = element("g", { "class": "defect-box predicted" + (below ? " below-threshold" : ""),
      "data-predicted": found.label, "data-score": String(found.score) }, svg);
    frame(group, found.box, colour(found.label));
    name(group, found.label + " " + found.score.toFixed(2), found.box[0], found.box[3], "-5", colour(found.label));
  }

  function drawBox(id, label, box) {
    var group = element("g", {
      "class": "defect-box" + (id === "draft" ? " is-draft" : "") + (selected === id ? " is-selected" : ""),
      "data-box-id": String(id), tabindex: "0", role: "button",
      "aria-label": id === "draft" ? "New box without a class" : label + " box " + id,
    }, svg);
    frame(group, box, id === "draft" ? null : colour(label));
    name(group, id === "draft" ? (draft.saving ? "saving…" : "class? 1…9") : label, box[0], box[1], "14",
      id === "draft" ? "#ffffff" : colour(label));
    return group;
  }

  function drawHandles(box) {
    if (!canEdit) return;
    CORNERS.forEach(function (corner) {
      element("circle", { "class": "defect-box-handle", "data-corner": corner, r: "5",
        cx: percent(corner.charAt(1) === "w" ? box[0] : box[2]), cy: percent(corner.charAt(0) === "n" ? box[1] : box[3]) }, svg);
    });
  }

  function render() {
    rendering = true;
    svg.textContent = "";
    element("rect", { "class": "defect-box-canvas", width: "100%", height: "100%" }, svg);
    offered().forEach(drawPredicted);
    if (showBelow) belowThreshold().forEach(drawPredicted);
    var focus = null;
    state.boxes.forEach(function (box) {
      if (removed[box.id]) return;
      var group = drawBox(box.id, box.label, geometry(box.id));
      if (selected === box.id) focus = group;
    });
    if (draft) {
      var group = drawBox("draft", null, draft.box);
      if (selected === "draft") focus = group;
    }
    if (selected !== null && geometry(selected)) drawHandles(geometry(selected));
    if (focus && document.activeElement !== focus) focus.focus({ preventScroll: true });
    rendering = false;
    renderList();
  }

  function renderHiddenNote(below) {
    if (!hiddenNote) return;
    hiddenNote.hidden = below.length === 0;
    hiddenCount.textContent = below.length + " box" + (below.length === 1 ? "" : "es") + " under threshold " +
      (showBelow ? "shown faintly (not accepted)" : "hidden") + ".";
    hiddenToggle.textContent = showBelow ? "Hide them" : "Show them";
    hiddenToggle.setAttribute("aria-pressed", String(showBelow));
  }

  function renderList() {
    var shown = state.boxes.filter(function (box) { return !removed[box.id]; });
    var waiting = offered();
    var below = belowThreshold();
    if (summary) summary.textContent = shown.length + " on the image · " + waiting.length + " from the model" +
      (state.version === null ? "" : " · version " + state.version);
    if (acceptButton) acceptButton.disabled = waiting.length === 0;
    renderHiddenNote(below);
    if (!list) return;
    list.textContent = "";
    shown.forEach(function (box) {
      var item = document.createElement("li");
      item.dataset.boxId = box.id;
      item.classList.toggle("is-selected", selected === box.id);
      var swatch = document.createElement("span");
      swatch.className = "defect-box-swatch";
      swatch.textContent = "■";
      swatch.dataset.label = box.label;
      item.appendChild(swatch);
      item.appendChild(document.createTextNode(" " + box.label + " "));
      var origin = document.createElement("span");
      origin.className = "muted small";
      origin.textContent = describe(box);
      item.appendChild(origin);
      var where = document.createElement("span");
      where.className = "muted small box-where";
      where.textContent = " · " + position(geometry(box.id));
      item.appendChild(where);
      list.appendChild(item);
    });
    waiting.forEach(function (found) {
      var item = document.createElement("li");
      item.className = "predicted";
      item.dataset.predicted = found.label;
      item.textContent = "⬚ " + found.label + " " + found.score.toFixed(2) + " (model v" + found.model_version + ", not accepted)";
      list.appendChild(item);
    });
    if (showBelow) below.forEach(function (found) {
      var item = document.createElement("li");
      item.className = "predicted below-threshold";
      item.dataset.predicted = found.label;
      item.textContent = "⬚ " + found.label + " " + found.score.toFixed(2) + " (model v" + found.model_version +
        ", under the class's box threshold " + found.box_threshold.toFixed(2) + ": not offered)";
      list.appendChild(item);
    });
    // The swatch colours are SVG-free text: colour them through the CSSOM (allowed by the CSP).
    Array.prototype.forEach.call(list.querySelectorAll(".defect-box-swatch"), function (swatch) {
      swatch.style.color = colour(swatch.dataset.label);
    });
  }

  // --- Selection -----------------------------------------------------------------------------

  function select(id) {
    if (selected === id) return;
    if (selected === "draft" && id !== "draft" && draft && !draft.saving) {
      draft = null;
      say("The new box had no class and was dropped.");
    }
    flush();
    selected = id;
    render();
    if (id !== null && id !== "draft" && canEdit) {
      say("Box " + id + " selected: its class with 1…9, arrows move, Shift+arrows resize, Delete removes, Esc done.");
    }
  }

  svg.addEventListener("focusin", function (event) {
    if (rendering) return;
    var group = event.target.closest && event.target.closest("[data-box-id]");
    if (group) select(group.dataset.boxId === "draft" ? "draft" : parseInt(group.dataset.boxId, 10));
  });
  svg.addEventListener("focusout", function (event) {
    if (rendering || drag) return;
    if (event.relatedTarget && svg.contains(event.relatedTarget)) return;
    select(null);
  });
  if (list) {
    list.addEventListener("click", function (event) {
      var item = event.target.closest("li[data-box-id]");
      if (item) select(parseInt(item.dataset.boxId, 10));
    });
  }

  // --- Talking to the API ----------------------------------------------------------------------

  function load() {
    loading = true;
    return fetch(url, { credentials: "same-origin", headers: { Accept: "application/json" } })
      .then(api.bodyOrError)
      .then(function (body) {
        show(body);
        pump();
      })
      .catch(function (error) { say("The boxes could not be loaded: " + error.message, true); })
      .then(function () { loading = false; });
  }

  function show(body) {
    state = { version: body.boxes_version, boxes: body.boxes, predicted: body.predicted || [] };
    Object.keys(removed).forEach(function (id) { if (!findBox(parseInt(id, 10))) delete removed[id]; });
    if (selected !== null && selected !== "draft" && !findBox(selected)) selected = null;
    render();
  }

  // Changes wait for a loaded version; one made while the boxes could not be loaded tries again.
  function enqueue(changes, done) {
    queue.push({ changes: changes, done: done });
    if (state.version === null && !loading) load();
    else pump();
  }

  function settleWaiters() {
    if (sending || queue.length > 0 || Object.keys(dirty).length > 0) return;
    var waiting = waiters;
    waiters = [];
    waiting.forEach(function (resolve) { resolve(outcome); });
  }

  // Forget what was not stored and reload; changes wait for the reloaded version (pump needs one).
  function forget() {
    queue = [];
    dirty = {};
    removed = {};
    state.version = null;
    if (draft) draft.saving = false;
  }

  function refused(result) {
    var status = result.response.status;
    forget();
    var kept = draft ? " Your new box is still here: press its class key to add it, or Esc to drop it." : "";
    if (status === 409) {
      var details = (result.body && result.body.error && result.body.error.details) || {};
      say("Boxes not saved: someone else changed this image's boxes meanwhile (now version " + details.boxes_version +
        "). They are reloaded: look again and redo your change." + kept, true);
    } else {
      say("Boxes not saved: " + api.errorText(result.body, status) + " They are reloaded as stored." + kept, true);
    }
    return load();
  }

  function pump() {
    if (sending || state.version === null) return;
    if (!queue.length) { settleWaiters(); return; }
    var item = queue.shift();
    sending = true;
    say("Saving boxes…");
    api.postJson(url, { expected_version: state.version, changes: item.changes }, csrfToken).then(function (result) {
      sending = false;
      if (result.response.status !== 200) {
        outcome = false;
        return refused(result).then(settleWaiters);
      }
      item.changes.forEach(function (change) {
        if (change.op === "move" && dirty[change.id] === change.box) delete dirty[change.id];
      });
      var said = item.done ? item.done(result.body) : null;  // a change may say more than "saved"
      show(result.body);
      say(said || "Boxes saved (version " + result.body.boxes_version + ").");
      pump();
    }).catch(function (error) {
      sending = false;
      outcome = false;
      forget();
      say("Boxes not saved: " + error.message + " Reloading them as stored…", true);
      load().then(settleWaiters);
    });
  }

  function flush() {
    clearTimeout(flushTimer);
    flushTimer = null;
    var moves = Object.keys(dirty).map(function (id) { return { op: "move", id: parseInt(id, 10), box: dirty[id] }; })
      .filter(function (change) {
        return !queue.some(function (item) { return item.changes.some(function (c) { return c.box === change.box; }); });
      });
    if (moves.length) enqueue(moves);
  }

  function flushSoon() {
    clearTimeout(flushTimer);
    flushTimer = setTimeout(flush, FLUSH_MS);
  }

  // Resolves true once every change made here is stored, false when one failed (the message says
  // which) or a drawn box still needs its class; the review script waits for it before leaving.
  api.boxesSettled = function () {
    outcome = true;
    flush();
    if (draft && !draft.saving) {
      say("The new box has no class yet: press its class key (1…9), or Esc to drop it.", true);
      return Promise.resolve(false);
    }
    return new Promise(function (resolve) {
      waiters.push(resolve);
      if (!sending && !queue.length) settleWaiters();
    });
  };

  window.addEventListener("beforeunload", function (event) {
    if (!pending()) return;
    event.preventDefault();
    event.returnValue = "";
  });

  // --- Changes ----------------------------------------------------------------------------------

  function refuseReadOnly() {
    say("Your role can look at the boxes but not change them.", true);
  }

  function classify(label) {
    if (!canEdit) { refuseReadOnly(); return; }
    if (selected === "draft") {
      if (draft.saving) return;
      draft.saving = true;
      render();
      enqueue([{ op: "add", label: label, box: draft.box }], function (body) {
        draft = null;
        if (selected === "draft") selected = body.added[0];
      });
      return;
    }
    var box = findBox(selected);
    if (!box || box.label === label) return;
    flush();
    enqueue([{ op: "relabel", id: box.id, label: label }]);
  }

  function removeSelected() {
    if (!canEdit) { refuseReadOnly(); return; }
    if (selected === "draft") {
      if (draft.saving) return;
      draft = null;
      selected = null;
      say("The new box was dropped.");
      render();
      return;
    }
    var id = selected;
    clearTimeout(flushTimer);
    delete dirty[id];
    queue.forEach(function (item) {
      item.changes = item.changes.filter(function (change) { return !(change.op === "move" && change.id === id); });
    });
    queue = queue.filter(function (item) { return item.changes.length > 0; });
    removed[id] = true;
    selected = null;
    render();
    enqueue([{ op: "delete", id: id }]);
  }

  function acceptAll() {
    if (!canEdit) { refuseReadOnly(); return; }
    var waiting = offered();
    if (!waiting.length) {
      var below = belowThreshold().length;
      say(below ? "The model's other boxes score under their class's box threshold: they are not accepted; draw one " +
        "where it is right." : state.predicted.length ? "The model's boxes are all accepted already."
        : "The model found no boxes on this image.");
      return;
    }
    var left = belowThreshold().length;
    setVisible(true);
    flush();
    enqueue(waiting.map(function (found) {
      return { op: "add", label: found.label, box: found.box, from_model: found.model_version };
    }), function (body) {
      return "Accepted " + body.added.length + " box" + (body.added.length === 1 ? "" : "es") + " from model v" +
        waiting[0].model_version + (left ? "; " + left + " under threshold not taken." : ".") +
        " Boxes saved (version " + body.boxes_version + ").";
    });
  }

  function newBox() {
    if (!canEdit) { refuseReadOnly(); return; }
    if (draft) { select("draft"); return; }
    setVisible(true);
    draft = { box: [0.4, 0.4, 0.6, 0.6], saving: false };
    selected = null;
    select("draft");
    say("New box: arrows move it, Shift+arrows resize it, then its class key (1…9); Esc drops it.");
  }

  function translated(box, dx, dy) {
    var width = box[2] - box[0];
    var height = box[3] - box[1];
    var x0 = clamp(box[0] + dx, 0, 1 - width);
    var y0 = clamp(box[1] + dy, 0, 1 - height);
    return [x0, y0, x0 + width, y0 + height];
  }

  function resized(box, corner, point) {
    var next = box.slice();
    if (corner.charAt(1) === "w") next[0] = clamp(point[0], 0, box[2] - MIN_SIZE);
    else next[2] = clamp(point[0], box[0] + MIN_SIZE, 1);
    if (corner.charAt(0) === "n") next[1] = clamp(point[1], 0, box[3] - MIN_SIZE);
    else next[3] = clamp(point[1], box[1] + MIN_SIZE, 1);
    return next;
  }

  function nudge(direction, grow) {
    var box = geometry(selected);
    if (!box || (draft && selected === "draft" && draft.saving)) return;
    var next = grow
      ? resized(box, "se", [box[2] + direction[0] * STEP, box[3] + direction[1] * STEP])
      : translated(box, direction[0] * STEP, direction[1] * STEP);
    setGeometry(selected, next);
    render();
    if (selected !== "draft") flushSoon();
  }

  // --- Pointer ----------------------------------------------------------------------------------

  function point(event) {
    var rect = svg.getBoundingClientRect();
    return [clamp((event.clientX - rect.left) / rect.width, 0, 1), clamp((event.clientY - rect.top) / rect.height, 0, 1)];
  }

  svg.addEventListener("pointerdown", function (event) {
    if (event.button !== 0) return;
    var start = point(event);
    var group = event.target.closest("[data-box-id]");
    var corner = event.target.dataset ? event.target.dataset.corner : null;
    if (corner) {
      drag = { mode: "resize", corner: corner, id: selected, start: start, from: geometry(selected).slice() };
    } else if (group) {
      var id = group.dataset.boxId === "draft" ? "draft" : parseInt(group.dataset.boxId, 10);
      select(id);
      if (!canEdit || (id === "draft" && draft.saving)) return;
      drag = { mode: "move", id: id, start: start, from: geometry(id).slice() };
    } else {
      if (!canEdit) { select(null); return; }
      drag = { mode: "draw", start: start };
    }
    drag.moved = false;
    svg.setPointerCapture(event.pointerId);
    event.preventDefault();
  });

  svg.addEventListener("pointermove", function (event) {
    if (!drag) return;
    var at = point(event);
    var dx = at[0] - drag.start[0];
    var dy = at[1] - drag.start[1];
    if (!drag.moved && Math.abs(dx) < MIN_SIZE && Math.abs(dy) < MIN_SIZE) return;
    drag.moved = true;
    if (drag.mode === "draw") {
      if (selected !== "draft") select(null);
      draft = { box: [Math.min(drag.start[0], at[0]), Math.min(drag.start[1], at[1]),
        Math.max(drag.start[0], at[0]), Math.max(drag.start[1], at[1])], saving: false };
      selected = "draft";
    } else if (drag.mode === "move") {
      setGeometry(drag.id, translated(drag.from, dx, dy));
    } else {
      setGeometry(drag.id, resized(drag.from, drag.corner, at));
    }
    render();
  });

  function endDrag() {
    if (!drag) return;
    var done = drag;
    drag = null;
    if (!done.moved) {
      if (done.mode === "draw") select(null);
      return;
    }
    if (done.mode === "draw") {
      if (draft.box[2] - draft.box[0] < MIN_SIZE || draft.box[3] - draft.box[1] < MIN_SIZE) {
        draft = null;
        selected = null;
        say("Too small for a box: drag further.", true);
        render();
        return;
      }
      render();
      say("New box: press its class key (1…9); Esc drops it.");
    } else if (done.id !== "draft") {
      flush();
    }
  }

  svg.addEventListener("pointerup", endDrag);
  svg.addEventListener("pointercancel", endDrag);

  // --- Keyboard (before the review script's keys: a selected box takes the label keys) --------

  function setVisible(visible) {
    svg.classList.toggle("is-hidden", !visible);
    if (toggleButton) toggleButton.setAttribute("aria-pressed", String(visible));
    if (!visible && selected !== null) select(null);
  }

  function boxKey(key, shift) {
    if (key === "b" || key === "B") { setVisible(svg.classList.contains("is-hidden")); return true; }
    if (key === "a" || key === "A") { acceptAll(); return true; }
    if (key === "e" || key === "E") { newBox(); return true; }
    if (selected === null) return false;
    if (key === "Escape") {
      if (selected === "draft" && draft && !draft.saving) { draft = null; say("The new box was dropped."); }
      select(null);
      return true;
    }
    if (key === "Enter" || key === " ") { select(null); return true; }
    if (!canEdit) return false;
    if (key === "Delete" || key === "Backspace") { removeSelected(); return true; }
    if (ARROWS[key]) { nudge(ARROWS[key], shift); return true; }
    if (key === "0") { say("no_defect describes a whole image, not a box: pick a defect class (1…9).", true); return true; }
    if (labelByKey[key.toLowerCase()]) { classify(labelByKey[key.toLowerCase()]); return true; }
    return false;
  }

  window.addEventListener("keydown", function (event) {
    if (event.ctrlKey || event.metaKey || event.altKey) return;
    var tag = (event.target.tagName || "").toLowerCase();
    if (["input", "textarea", "select"].indexOf(tag) >= 0 || event.target.isContentEditable) return;
    if (boxKey(event.key, event.shiftKey)) {
      event.preventDefault();
      event.stopImmediatePropagation();
    }
  }, true);

  if (toggleButton) toggleButton.addEventListener("click", function () { setVisible(svg.classList.contains("is-hidden")); });
  if (acceptButton) acceptButton.addEventListener("click", acceptAll);
  if (hiddenToggle) hiddenToggle.addEventListener("click", function () {
    showBelow = !showBelow;
    if (showBelow) setVisible(true);
    render();
  });

  svg.classList.toggle("read-only", !canEdit);
  render();
  load();
})(window.steelqc);
