// Keyboard-driven review queues: j/k move between items, the key on each action's button
// (listed at the top of the page, per queue) acts on the focused item, x selects it for a bulk
// action. Actions go through htmx (the buttons' hx-post; those that remove published content
// ask first, with hx-confirm); after an item is handled, focus moves to the next one so a
// queue can be cleared without a mouse.
(function () {
  "use strict";
  var list = document.querySelector("[data-mod-queue]");
  if (!list) { return; }

  function items() {
    return Array.prototype.slice.call(list.querySelectorAll("[data-item]:not([data-handled])"));
  }
  function current() {
    var active = document.activeElement;
    return active && active.closest ? active.closest("[data-item]") : null;
  }
  // The button's words without its <kbd> hint ("Reject", not "Reject r").
  function buttonLabel(button) {
    var words = "";
    Array.prototype.forEach.call(button.childNodes, function (node) {
      if (node.nodeType === Node.TEXT_NODE) { words += node.textContent; }
    });
    return words.trim();
  }
  function move(step) {
    var all = items();
    if (!all.length) { return; }
    var index = all.indexOf(current());
    var next = all[Math.min(Math.max(index + step, 0), all.length - 1)] || all[0];
    next.focus();
    next.scrollIntoView({ block: "nearest" });
  }

  document.addEventListener("keydown", function (event) {
    var target = event.target;
    if (event.ctrlKey || event.metaKey || event.altKey) { return; }
    if (target instanceof HTMLInputElement && target.type !== "checkbox") { return; }
    if (target instanceof HTMLTextAreaElement || target instanceof HTMLSelectElement) { return; }
    var key = event.key.toLowerCase();
    if (key === "j") { event.preventDefault(); move(1); return; }
    if (key === "k") { event.preventDefault(); move(-1); return; }
    var item = current();
    if (!item) { return; }
    if (key === "x") {
      event.preventDefault();
      var box = item.querySelector("input[type=checkbox]");
      if (box) { box.checked = !box.checked; }
      return;
    }
    var button = item.querySelector('button[data-key="' + key + '"]');
    if (!button) { return; }
    event.preventDefault();
    var reasonField = button.form && button.form.querySelector("[data-reason]");
    if (reasonField && button.hasAttribute("data-asks-reason")) {
      // The author is told why, so an empty answer asks again (Escape cancels).
      // The questions come translated from the page; {action} is the button's own label.
      var name = buttonLabel(button);
      var ask = (list.dataset.askReason || "{action}: why?").replace("{action}", name);
      var again = (list.dataset.askReasonAgain || ask).replace("{action}", name);
      var reason = window.prompt(ask);
      while (reason !== null && !reason.trim()) {
        reason = window.prompt(again);
      }
      if (reason === null) { return; }
      reasonField.value = reason.trim();
    }
    button.click();
  });

  // A refused action (another moderator handled the item first, a reason is missing) must not
  // fail silently: app.js passes on the server's explanation, shown here inside the item.
  document.body.addEventListener("community:refused", function (event) {
    var item = event.target instanceof Element ? event.target.closest("[data-item]") : null;
    if (!item) { return; }
    event.preventDefault();
    var note = item.querySelector("[data-error]");
    if (!note) {
      note = document.createElement("p");
      note.className = "alert";
      note.setAttribute("role", "alert");
      note.setAttribute("data-error", "");
      item.insertBefore(note, item.firstChild);
    }
    note.textContent = event.detail.message;
    item.focus();
  });

  // When htmx replaced an item with its "handled" note, continue with the next item.
  document.body.addEventListener("htmx:afterSwap", function (event) {
    var swapped = event.detail && event.detail.target;
    if (!swapped) { return; }
    var handled = document.getElementById(swapped.id);
    if (handled && handled.hasAttribute("data-handled")) {
      var next = handled.nextElementSibling;
      while (next && next.hasAttribute("data-handled")) { next = next.nextElementSibling; }
      if (next) { next.focus(); } else { handled.focus(); }
    }
  });
})();
