// Progressive enhancement only: every page works without this file.
(function () {
  "use strict";
  var zone = "";
  try { zone = Intl.DateTimeFormat().resolvedOptions().timeZone || ""; } catch (e) { /* old browser */ }

  function ready(fn) {
    if (document.readyState !== "loading") { fn(); } else { document.addEventListener("DOMContentLoaded", fn); }
  }

  ready(function () {
    // After a refused form, start where the first problem is.
    var invalid = document.querySelector("[aria-invalid=true]");
    if (invalid) { invalid.focus(); }

    // Sign-up: propose the browser's time zone for the first digests.
    document.querySelectorAll("[data-browser-timezone]").forEach(function (input) {
      if (!input.value && zone) { input.value = zone; }
    });

    // Schedule: offer the browser's zone when it differs from the saved one.
    var tzInput = document.querySelector("[data-timezone-input]");
    var suggest = document.querySelector("[data-timezone-suggest]");
    if (tzInput && suggest && zone && tzInput.value !== zone) {
      suggest.querySelector("[data-timezone-name]").textContent = zone;
      suggest.hidden = false;
      suggest.querySelector("button").addEventListener("click", function () {
        tzInput.value = zone;
        suggest.hidden = true;
        tzInput.focus();
      });
    }

    // Topics: a live preview of what the query being typed matches.
    var form = document.querySelector("form[data-live-preview]");
    if (!form || !window.fetch) { return; }
    var input = form.querySelector("input[name=query]");
    var output = document.getElementById("preview");
    var timer = null, controller = null, last = null;

    function preview() {
      var query = input.value.trim();
      if (query === last) { return; }
      last = query;
      if (controller) { controller.abort(); }
      if (!query) { output.innerHTML = ""; return; }
      controller = window.AbortController ? new AbortController() : null;
      output.setAttribute("aria-busy", "true");
      fetch(form.dataset.livePreview + "?query=" + encodeURIComponent(query), {
        headers: { "X-Requested-With": "fetch" },
        credentials: "same-origin",
        signal: controller ? controller.signal : undefined
      }).then(function (response) {
        if (response.status === 429) { return "<p class=\"muted\">Previews paused for a minute: you typed a lot!</p>"; }
        return response.ok ? response.text() : "";
      }).then(function (html) {
        // The server renders and escapes the fragment (no scripts: CSP forbids inline ones).
        output.innerHTML = html;
        output.removeAttribute("aria-busy");
      }).catch(function () { output.removeAttribute("aria-busy"); });
    }

    input.addEventListener("input", function () {
      clearTimeout(timer);
      timer = setTimeout(preview, 300);
    });
    var button = form.querySelector("[data-preview-button]");
    if (button) {
      button.addEventListener("click", function (event) {
        event.preventDefault();
        last = null;
        preview();
      });
    }
  });
})();
