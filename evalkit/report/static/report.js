// The failure-case viewer. It reads the embedded JSON document and builds every element
// with createElement/textContent: no data ever goes through innerHTML, so text from a
// model or a dataset is only ever text.
(function () {
  "use strict";
  var source = document.getElementById("failure-data");
  if (!source) { return; }
  var doc = JSON.parse(source.textContent);
  var PAGE = 20;
  var state = { candidate: "", check: "", field: "", query: "", flip: null, page: 0 };
  var matches = [];
  var haystacks = null;

  function el(tag, cls, text) {
    var node = document.createElement(tag);
    if (cls) { node.className = cls; }
    if (text !== undefined && text !== null) { node.textContent = text; }
    return node;
  }
  function byId(id) { return document.getElementById(id); }

  function parseObject(text) {
    try {
      var value = JSON.parse(text.trim());
      return value !== null && typeof value === "object" && !Array.isArray(value) ? value : null;
    } catch (e) { return null; }
  }
  function show(value) {
    if (value === undefined) { return "(missing)"; }
    return typeof value === "string" ? value : JSON.stringify(value);
  }
  function haystack(i) {
    if (haystacks === null) { haystacks = new Array(doc.records.length); }
    if (haystacks[i] === undefined) {
      var r = doc.records[i], item = doc.items[r[1]];
      haystacks[i] = (item[0] + "\n" + item[1] + "\n" + item[2] + "\n" + r[2]).toLowerCase();
    }
    return haystacks[i];
  }

  function applyFilters() {
    var flipItems = null, flipCandidate = null;
    if (state.flip !== null) {
      var flip = doc.flips[state.flip];
      flipItems = new Set(flip.items);
      flipCandidate = flip.candidate;
    }
    var cand = state.candidate === "" ? null : Number(state.candidate);
    var check = state.check === "" ? null : Number(state.check);
    var field = state.field === "" ? null : Number(state.field);
    var query = state.query.trim().toLowerCase();
    matches = [];
    for (var i = 0; i < doc.records.length; i++) {
      var r = doc.records[i];
      if (flipItems !== null && (r[0] !== flipCandidate || !flipItems.has(r[1]))) { continue; }
      if (cand !== null && r[0] !== cand) { continue; }
      if (check !== null && !r[3].some(function (c) { return c[0] === check; })) { continue; }
      if (field !== null && r[4].indexOf(field) < 0) { continue; }
      if (query && haystack(i).indexOf(query) < 0) { continue; }
      matches.push(i);
    }
    state.page = 0;
    render();
  }

  function sideBySide(expectedText, predictedText) {
    var expected = parseObject(expectedText), got = parseObject(predictedText);
    var box = el("div", "side");
    if (expected !== null && got !== null) {
      var table = el("table", "diff");
      var head = el("tr");
      head.appendChild(el("th", "k", "field"));
      head.appendChild(el("th", null, "expected"));
      head.appendChild(el("th", null, "predicted"));
      table.appendChild(head);
      var keys = Object.keys(expected);
      Object.keys(got).forEach(function (k) { if (keys.indexOf(k) < 0) { keys.push(k); } });
      keys.forEach(function (k) {
        var a = Object.prototype.hasOwnProperty.call(expected, k) ? expected[k] : undefined;
        var b = Object.prototype.hasOwnProperty.call(got, k) ? got[k] : undefined;
        var row = el("tr", JSON.stringify(a) === JSON.stringify(b) ? "" : "differs");
        row.appendChild(el("th", null, k));
        var left = el("td", "want"); left.appendChild(el("div", null, show(a)));
        var right = el("td", "got"); right.appendChild(el("div", null, show(b)));
        row.appendChild(left); row.appendChild(right);
        table.appendChild(row);
      });
      var wrap = el("div"); wrap.style.gridColumn = "1 / span 2";
      wrap.appendChild(table);
      var raw = el("details"); raw.appendChild(el("summary", "small muted", "raw prediction"));
      raw.appendChild(el("pre", "text", predictedText));
      wrap.appendChild(raw);
      box.appendChild(wrap);
      return box;
    }
    var l = el("div"); l.appendChild(el("h4", null, "expected")); l.appendChild(el("pre", "text", expectedText));
    var r = el("div"); r.appendChild(el("h4", null, "predicted")); r.appendChild(el("pre", "text", predictedText));
    box.appendChild(l); box.appendChild(r);
    return box;
  }

  function card(index) {
    var r = doc.records[index], item = doc.items[r[1]];
    var node = el("article", "case");
    var head = el("div", "head");
    head.appendChild(el("span", "cand", doc.candidates[r[0]]));
    head.appendChild(el("span", "id", item[0]));
    r[3].forEach(function (c) {
      var reason = doc.reasons[c[1]];
      head.appendChild(el("span", "badge", doc.checks[c[0]] + (reason ? ": " + reason : "")));
    });
    r[4].forEach(function (f) { head.appendChild(el("span", "badge field", "field " + doc.fields[f])); });
    node.appendChild(head);
    if (item[2]) {
      var input = el("details");
      input.appendChild(el("summary", "small muted", "input"));
      input.appendChild(el("pre", "text", item[2]));
      node.appendChild(input);
    }
    node.appendChild(sideBySide(item[1], r[2]));
    return node;
  }

  function render() {
    var list = byId("f-list");
    var pages = Math.max(1, Math.ceil(matches.length / PAGE));
    if (state.page >= pages) { state.page = pages - 1; }
    var start = state.page * PAGE;
    var fragment = document.createDocumentFragment();
    matches.slice(start, start + PAGE).forEach(function (i) { fragment.appendChild(card(i)); });
    list.replaceChildren(fragment);
    byId("f-count").textContent = matches.length === 0 ? "no matching cases" :
      (start + 1) + "–" + Math.min(start + PAGE, matches.length) + " of " + matches.length + " cases";
    byId("f-page").textContent = "page " + (state.page + 1) + " of " + pages;
    byId("f-prev").disabled = state.page === 0;
    byId("f-next").disabled = state.page >= pages - 1;
    var note = byId("f-flip");
    note.hidden = state.flip === null;
    if (state.flip !== null) { byId("f-flip-label").textContent = doc.flips[state.flip].label; }
  }

  function bindSelect(id, key) {
    var node = byId(id);
    if (!node) { return; }
    node.addEventListener("change", function () { state[key] = node.value; applyFilters(); });
  }
  bindSelect("f-candidate", "candidate");
  bindSelect("f-check", "check");
  bindSelect("f-field", "field");
  var timer = null;
  byId("f-search").addEventListener("input", function (event) {
    clearTimeout(timer);
    timer = setTimeout(function () { state.query = event.target.value; applyFilters(); }, 150);
  });
  byId("f-prev").addEventListener("click", function () { state.page -= 1; render(); });
  byId("f-next").addEventListener("click", function () { state.page += 1; render(); });
  byId("f-flip-clear").addEventListener("click", function () { state.flip = null; applyFilters(); });
  Array.prototype.forEach.call(document.querySelectorAll("button[data-flip]"), function (button) {
    button.addEventListener("click", function () {
      state.flip = Number(button.getAttribute("data-flip"));
      state.candidate = ""; state.check = ""; state.field = "";
      ["f-candidate", "f-check", "f-field"].forEach(function (id) { if (byId(id)) { byId(id).value = ""; } });
      applyFilters();
      byId("failures").scrollIntoView();
    });
  });
  applyFilters();
  document.documentElement.setAttribute("data-failures-ready", String(doc.records.length));
})();
