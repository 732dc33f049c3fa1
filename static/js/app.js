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
