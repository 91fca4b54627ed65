// Key Management's one-time secret page. The secret exists only in this page's DOM:
// copying it, falling back to a selected read-only field, and wiping it on leaving.
(function () {
  "use strict";

  var box = document.querySelector("[data-one-time-secret]");
  if (!box) return;
  var input = box.querySelector("input");
  var button = box.querySelector("[data-copy-secret]");
  var status = document.querySelector("[data-copy-status]");
  var after = box.getAttribute("data-after") || "/admin/keys";

  // This page answers a POST. Rewriting its history entry makes a reload (or a
  // return to it) a GET of the key's page: the form is never sent again and the
  // secret is never shown again.
  if (window.history && window.history.replaceState) {
    window.history.replaceState(null, "", after);
  }

  function say(text) {
    if (status) status.textContent = text;
  }

  function selectIt() {
    input.focus();
    input.select();
  }

  input.addEventListener("focus", function () { input.select(); });
  input.addEventListener("click", function () { input.select(); });

  button.addEventListener("click", function () {
    if (navigator.clipboard && window.isSecureContext) {
      navigator.clipboard.writeText(input.value).then(function () {
        button.textContent = "Copied";
        say("Copied to the clipboard. Paste it into your secret manager now.");
      }, function () {
        selectIt();
        say("The browser did not allow copying: the key is selected, press Ctrl+C (⌘C on a Mac).");
      });
    } else {
      selectIt();
      say("The key is selected: press Ctrl+C (⌘C on a Mac) to copy it.");
    }
  });

  // Leaving the page drops the secret, so that the back/forward cache has nothing to show.
  window.addEventListener("pagehide", function () {
    input.value = "";
    box.remove();
  });
  window.addEventListener("pageshow", function (event) {
    if (event.persisted) window.location.replace(after);
  });
})();
