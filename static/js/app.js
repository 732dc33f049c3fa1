// Small progressive enhancements. Everything works without this file.
(function () {
  "use strict";
  // Forms marked data-confirm ask before submitting (used for destructive actions).
  document.addEventListener("submit", function (event) {
    var form = event.target;
    if (form instanceof HTMLFormElement && form.dataset.confirm) {
      if (!window.confirm(form.dataset.confirm)) {
        event.preventDefault();
      }
    }
  });
  // A refused htmx action (4xx: someone else was first, a reason is missing, too many tries)
  // is an answer, not a script failure: htmx would swap nothing and log an error, so show the
  // server's explanation instead. Widgets with a better place for it (a queue item) listen for
  // "community:refused" and cancel it; otherwise it appears with the flash messages.
  function explanation(xhr) {
    var parts = [];
    var page = new DOMParser().parseFromString(xhr.responseText || "", "text/html");
    Array.prototype.forEach.call(page.querySelectorAll("main .card > p:first-of-type, main .card li"), function (node) {
      var text = node.textContent.trim();
      if (text) { parts.push(text); }
    });
    return parts.join(" ");
  }
  function showAlert(message) {
    var area = document.getElementById("flash-area");
    if (!area) { return; }
    var list = document.createElement("ul");
    list.className = "flashes";
    var item = document.createElement("li");
    item.className = "flash error";
    item.setAttribute("role", "alert");
    item.textContent = message;
    list.appendChild(item);
    area.replaceChildren(list);
  }
  document.addEventListener("htmx:beforeSwap", function (event) {
    var xhr = event.detail && event.detail.xhr;
    if (!xhr || xhr.status < 400 || xhr.status >= 500) { return; }
    event.detail.shouldSwap = false;
    event.detail.isError = false;
    var fallback = document.body.dataset.refusedFallback || "";
    var message = explanation(xhr) || fallback.replace("{status}", String(xhr.status));
    var refused = new CustomEvent("community:refused", {
      bubbles: true, cancelable: true, detail: { message: message, status: xhr.status }
    });
    if (event.target.dispatchEvent(refused)) { showAlert(message); }
  });
  // The account menu (details/summary, works without this) closes when the person clicks
  // elsewhere or presses Escape, as menus do.
  document.addEventListener("click", function (event) {
    Array.prototype.forEach.call(document.querySelectorAll(".account-menu details[open]"), function (menu) {
      if (!menu.contains(event.target)) { menu.open = false; }
    });
  });
  document.addEventListener("keydown", function (event) {
    if (event.key !== "Escape") { return; }
    var menu = document.querySelector(".account-menu details[open]");
    if (menu) {
      menu.open = false;
      menu.querySelector("summary").focus();
    }
  });
  // After an htmx swap, move focus to a swapped element that asks for it (keyboard users).
  document.addEventListener("htmx:afterSwap", function (event) {
    var target = event.detail && event.detail.target;
    if (target && target.querySelector) {
      var focus = target.querySelector("[data-autofocus]");
      if (focus) { focus.focus(); }
    }
  });
})();

// Self-service: when someone writing a question opens a suggested answer, tell the server
// (a possible deflection). sendBeacon survives the navigation; the link works without it.
(function () {
  "use strict";
  document.addEventListener("click", function (event) {
    var link = event.target instanceof Element ? event.target.closest("a[data-deflect]") : null;
    if (!link || !navigator.sendBeacon) { return; }
    var token = document.querySelector('meta[name="csrf-token"]');
    var data = new FormData();
    data.append("csrf_token", token ? token.getAttribute("content") : "");
    data.append("brand", link.dataset.brand || "");
    data.append("entry_type", link.dataset.entryType || "");
    data.append("entry_id", link.dataset.entryId || "0");
    data.append("q", link.dataset.query || "");
    navigator.sendBeacon("/kb/deflect", data);
  });
})();
