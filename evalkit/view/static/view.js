// evalkit view: labelling buttons. Plain JavaScript, no dependencies; no inline handlers
// (the Content-Security-Policy forbids them). Model text is only ever set as textContent.
"use strict";

(function () {
  const csrf = document.querySelector('meta[name="csrf-token"]').getAttribute("content");

  async function post(url, body) {
    const response = await fetch(url, {
      method: "POST",
      credentials: "same-origin",
      headers: { "Content-Type": "application/json", "X-CSRF-Token": csrf },
      body: JSON.stringify(body || {}),
    });
    let data = {};
    try { data = await response.json(); } catch (e) { data = { error: response.statusText }; }
    return { ok: response.ok, data: data };
  }

  function describe(label) {
    if (label.criterion === "pass") return "pass = " + (label.value >= 1 ? "pass" : "fail");
    return label.criterion + " = " + Math.round(label.value);
  }

  function labelItem(label) {
    const li = document.createElement("li");
    li.dataset.labelId = String(label.label_id);
    const what = document.createElement("span");
    what.className = "lv";
    what.textContent = describe(label);
    const who = document.createElement("span");
    who.className = "by";
    who.textContent = label.author;
    const undo = document.createElement("button");
    undo.type = "button";
    undo.className = "undo";
    undo.dataset.undo = String(label.label_id);
    undo.textContent = "undo";
    li.append(what, " ", who, " ", undo);
    return li;
  }

  function showError(box, text) {
    let line = box.querySelector(".error");
    if (!line) {
      line = document.createElement("p");
      line.className = "error";
      box.append(line);
    }
    line.textContent = text;
  }

  document.addEventListener("click", async function (event) {
    const target = event.target;
    if (!(target instanceof HTMLButtonElement)) return;
    const box = target.closest(".labels");
    if (!box) return;
    if (target.classList.contains("mark")) {
      target.disabled = true;
      const result = await post("/api/labels", {
        run_id: box.dataset.run, candidate: box.dataset.candidate, item_id: box.dataset.item,
        criterion: target.dataset.criterion, value: Number(target.dataset.value),
      });
      target.disabled = false;
      if (!result.ok) { showError(box, result.data.error || "the label was not saved"); return; }
      box.querySelector("ul.given").append(labelItem(result.data.label));
      box.dataset.saved = String(Number(box.dataset.saved || 0) + 1);
    } else if (target.classList.contains("undo")) {
      target.disabled = true;
      const result = await post("/api/labels/" + encodeURIComponent(target.dataset.undo) + "/undo");
      if (!result.ok) { target.disabled = false; showError(box, result.data.error || "not undone"); return; }
      target.closest("li").remove();
    }
  });

  // Changing a filter's select re-runs the filter (the form is a plain GET: its state is the URL).
  document.querySelectorAll("form.filters select, form.pair select").forEach(function (select) {
    select.addEventListener("change", function () { select.form.requestSubmit(); });
  });
  document.documentElement.dataset.viewReady = "1";
})();
