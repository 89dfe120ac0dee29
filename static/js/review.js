// Keyboard-first expert review (templates/annotator/review.html).
//
// An item comes assisted (the critic's verdict: A approve, E edit, R reject; D picks a dimension
// and 0-4 scores it) or blind (no critic: 1-4 label it, E rewrites the answer first); the keys
// only find the buttons and fields the item has.
//
// Every key only clicks a real button of a real form, so keys, mouse and no-JS users all send
// exactly the same POST; htmx swaps the next item into #review-item. Keys never fire while the
// expert types in a text field, except Ctrl+Enter (submit) and Escape (leave the field).
(function () {
  "use strict";

  let shownAt = performance.now();
  // The item whose decision is on its way: further keys for it are dropped (no double POST),
  // but keys for the next item work the moment it is swapped in. A flag cleared on
  // htmx:afterRequest lost keystrokes, because that event can come after the new item is shown.
  let pendingItem = null;

  function root() { return document.getElementById("review-root"); }
  function byId(id) { return document.getElementById(id); }

  function isTyping(el) {
    if (!el || !el.tagName) return false;
    const tag = el.tagName;
    if (tag === "TEXTAREA" || tag === "SELECT" || el.isContentEditable) return true;
    return tag === "INPUT" && !["radio", "checkbox", "button", "submit", "hidden"].includes(el.type);
  }

  function currentItemId() {
    const item = byId("review-item");
    return item ? item.dataset.itemId || "" : "";
  }

  function click(id) {
    const button = byId(id);
    if (!button || button.disabled) return;
    const item = currentItemId();
    if (pendingItem !== null && pendingItem === item) return;
    pendingItem = item;
    // A key can beat htmx's processing of a just-swapped form; processing is idempotent, and
    // without it the click would fall back to a plain (full-page) form submission.
    if (window.htmx && button.form) window.htmx.process(button.form);
    button.click();
  }

  function toggle(id, force) {
    const panel = byId(id);
    if (panel) panel.hidden = force === undefined ? !panel.hidden : !force;
    return panel;
  }

  function openReject() {
    const panel = byId("reject-panel");
    if (!panel) return;
    panel.classList.add("open");
    panel.scrollIntoView({ block: "nearest" });
  }

  function rejectWith(key) {
    const panel = byId("reject-panel");
    if (!panel || !panel.classList.contains("open")) return false;
    let radio = key ? panel.querySelector('input[data-key="' + key + '"]') : null;
    if (!radio) radio = panel.querySelector('input[name="reason_code"]:checked') || byId("reason-other");
    radio.checked = true;
    click("btn-reject");
    return true;
  }

  // A blind item: the verdict key clicks its labelled submit button (1 safe ... 4 over-refusal).
  function labelWith(key) {
    if (!byId("btn-label-" + key)) return false;
    click("btn-label-" + key);
    return true;
  }

  // Dimensions (assisted only): D moves the selection harmlessness -> helpfulness -> honesty ->
  // none; 0-4 sets the selected one's select, which the decision form sends (A approves with it).
  function selectedDimension() { return document.querySelector(".dimension.selected"); }

  function nextDimension() {
    const rows = Array.from(document.querySelectorAll(".dimension"));
    if (!rows.length) return false;
    const current = selectedDimension();
    const next = rows[current ? rows.indexOf(current) + 1 : 0] || null;
    rows.forEach(function (row) { row.classList.toggle("selected", row === next); });
    const panel = byId("reject-panel");
    if (panel) panel.classList.remove("open");
    return true;
  }

  function closeDimension() {
    const row = selectedDimension();
    if (row) row.classList.remove("selected");
  }

  function scoreDimension(key) {
    const row = selectedDimension();
    if (!row || key < "0" || key > "4") return false;
    const select = row.querySelector("select");
    select.value = key;
    row.classList.toggle("changed", select.value !== select.dataset.critic);
    return true;
  }

  function toggleGuidelines() {
    const panel = toggle("guidelines-panel");
    const body = byId("guidelines-body");
    if (panel && !panel.hidden && body && !body.dataset.loaded && window.htmx) {
      body.dataset.loaded = "1";
      window.htmx.ajax("GET", root().dataset.guidelinesUrl, { target: "#guidelines-body", swap: "innerHTML" });
    }
  }

  function closePanels() {
    toggle("review-help", false);
    toggle("guidelines-panel", false);
    const panel = byId("reject-panel");
    if (panel) panel.classList.remove("open");
    closeDimension();
  }

  // The time the expert looked at this item, sent with the decision (the server clamps it).
  document.addEventListener("submit", function (event) {
    const field = event.target.querySelector && event.target.querySelector('input[name="client_ms"]');
    if (field) field.value = String(Math.round(performance.now() - shownAt));
  }, true);

  // A failed request leaves the same item on screen: let the expert try again.
  document.addEventListener("htmx:responseError", function () { pendingItem = null; });
  document.addEventListener("htmx:sendError", function () { pendingItem = null; });
  // A 400 carries the item again with the error message: show it instead of dropping it.
  document.addEventListener("htmx:beforeSwap", function (event) {
    if (event.detail.xhr.status === 400 && event.detail.target && event.detail.target.id === "review-item") {
      event.detail.shouldSwap = true;
      event.detail.isError = false;
    }
  });
  document.addEventListener("htmx:afterSwap", function (event) {
    if (event.detail.target && event.detail.target.id === "guidelines-body") return;
    shownAt = performance.now();
    pendingItem = null;
    if (document.activeElement && document.activeElement !== document.body) document.activeElement.blur();
  });

  document.addEventListener("click", function (event) {
    if (event.target.closest && event.target.closest("#btn-reject-open")) openReject();
  });

  document.addEventListener("keydown", function (event) {
    if (!root()) return;
    const target = event.target;
    if (isTyping(target)) {
      if (event.key === "Enter" && (event.ctrlKey || event.metaKey)) {
        event.preventDefault();
        // Assisted, Ctrl+Enter saves the edit; blind, the edit goes with the verdict key, so it
        // only leaves the box.
        if (target.id === "revision") { if (byId("btn-edit")) click("btn-edit"); else target.blur(); }
        else if (target.closest("#reject-panel")) rejectWith(null);
      } else if (event.key === "Escape") {
        target.blur();
      }
      return;
    }
    if (event.ctrlKey || event.metaKey || event.altKey) return;
    const key = event.key;
    let handled = true;
    if (key === "a" || key === "A") click("btn-approve");
    else if (key === "e" || key === "E") {
      const box = byId("revision");
      if (box) { box.focus(); box.setSelectionRange(box.value.length, box.value.length); }
    } else if (key === "r" || key === "R") { closeDimension(); openReject(); }
    else if (key === "d" || key === "D") handled = nextDimension();
    else if ((key === "n" || key === "N") && byId("reject-panel") && byId("reject-panel").classList.contains("open")) {
      byId("reject-note").focus();
    }
    else if (key >= "0" && key <= "4") handled = labelWith(key) || (key !== "0" && rejectWith(key)) || scoreDimension(key);
    else if (key === "s" || key === "S") click("btn-skip");
    else if (key === "u" || key === "U") click("btn-undo");
    else if (key === "g" || key === "G") toggleGuidelines();
    else if (key === "?") toggle("review-help");
    else if (key === "Escape") closePanels();
    else handled = false;
    if (handled) event.preventDefault();
  });

  function markScripted() {
    const element = root();
    if (element) element.classList.add("js");
  }
  if (document.readyState === "loading") document.addEventListener("DOMContentLoaded", markScripted);
  else markScripted();
})();
