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
