// Pictures in the Markdown editors (templates/_components/image_upload.html): pick one with
// "Add image", or paste or drop it into the text; it is uploaded (POST /uploads, with the page's
// CSRF token) and its Markdown, ![name](/uploads/<key>), goes in at the cursor. The server checks
// and re-encodes every image; the size check here only saves a pointless upload.
(function () {
  "use strict";
  var meta = document.querySelector('meta[name="csrf-token"]');
  var token = meta ? meta.getAttribute("content") : "";

  function say(control, message) {
    var status = control.querySelector("[data-upload-status]");
    if (status) { status.textContent = message; }
  }

  function insertAtCursor(textarea, text) {
    var start = textarea.selectionStart || 0;
    var end = textarea.selectionEnd || start;
    var before = textarea.value.slice(0, start);
    var piece = (before && !/\n$/.test(before) ? "\n" : "") + text + "\n";
    textarea.setRangeText(piece, start, end, "end");
    textarea.focus();
    // The live preview (htmx, on input) shows the picture.
    textarea.dispatchEvent(new Event("input", { bubbles: true }));
  }

  function refusal(response, control) {
    if (response.status === 413) { return Promise.resolve(control.dataset.msgTooLarge); }
    return response.json().then(function (body) {
      return (body && body.error && body.error.message) || control.dataset.msgFailed;
    }, function () { return control.dataset.msgFailed; });
  }

  function upload(control, textarea, file) {
    if (file.size > Number(control.dataset.maxBytes || 0)) {
      say(control, control.dataset.msgTooLarge);
      return;
    }
    var form = new FormData();
    form.append("file", file, file.name || "image");
    form.append("purpose", control.dataset.purpose || "post");
    if (control.dataset.brand) { form.append("brand", control.dataset.brand); }
    say(control, control.dataset.msgUploading);
    fetch(control.dataset.uploadUrl, {
      method: "POST",
      body: form,
      credentials: "same-origin",
      headers: { "X-CSRF-Token": token, "Accept": "application/json" }
    }).then(function (response) {
      if (response.ok) {
        return response.json().then(function (body) {
          insertAtCursor(textarea, body.markdown);
          say(control, control.dataset.msgDone);
        });
      }
      return refusal(response, control).then(function (message) { say(control, message); });
    }).catch(function () { say(control, control.dataset.msgFailed); });
  }

  function images(list) {
    return Array.prototype.filter.call(list || [], function (file) {
      return file.type.indexOf("image/") === 0;
    });
  }

  Array.prototype.forEach.call(document.querySelectorAll("[data-upload-for]"), function (control) {
    var textarea = document.getElementById(control.dataset.uploadFor);
    var input = control.querySelector('input[type="file"]');
    if (!textarea || !input) { return; }
    control.hidden = false;
    input.addEventListener("change", function () {
      images(input.files).forEach(function (file) { upload(control, textarea, file); });
      input.value = "";
    });
    textarea.addEventListener("paste", function (event) {
      var files = images(event.clipboardData && event.clipboardData.files);
      if (!files.length) { return; }  // text pastes as text
      event.preventDefault();
      files.forEach(function (file) { upload(control, textarea, file); });
    });
    textarea.addEventListener("dragover", function (event) {
      if (event.dataTransfer && Array.prototype.indexOf.call(event.dataTransfer.types, "Files") >= 0) {
        event.preventDefault();
      }
    });
    textarea.addEventListener("drop", function (event) {
      var files = images(event.dataTransfer && event.dataTransfer.files);
      if (!files.length) { return; }
      event.preventDefault();
      files.forEach(function (file) { upload(control, textarea, file); });
    });
  });
})();
