// Searchgate console: the few behaviours that need script. No inline handlers are
// used (the Content-Security-Policy forbids them), so they are wired up here.
(function () {
  "use strict";

  // Copy buttons: <button data-copy="#element-id">; the text of the target is copied.
  document.addEventListener("click", function (event) {
    var button = event.target.closest("[data-copy]");
    if (!button) return;
    var target = document.querySelector(button.getAttribute("data-copy"));
    if (!target) return;
    var text = target.textContent.trim();
    var done = function () {
      var label = button.textContent;
      button.textContent = "Copied";
      setTimeout(function () { button.textContent = label; }, 1500);
    };
    if (navigator.clipboard && window.isSecureContext) {
      navigator.clipboard.writeText(text).then(done, function () { select(target); });
    } else {
      select(target);
      try { document.execCommand("copy"); done(); } catch (e) { /* selected for the person */ }
    }
  });

  function select(node) {
    var range = document.createRange();
    range.selectNodeContents(node);
    var sel = window.getSelection();
    sel.removeAllRanges();
    sel.addRange(range);
  }

  // Confirmations: <form data-confirm="Really?"> or <button data-confirm="Really?">.
  document.addEventListener("submit", function (event) {
    var source = event.submitter && event.submitter.hasAttribute("data-confirm")
      ? event.submitter : event.target.closest("form[data-confirm]");
    if (source && !window.confirm(source.getAttribute("data-confirm"))) event.preventDefault();
  }, true);

  // Site parameter rows: add and remove key/value rows without a round trip.
  document.addEventListener("click", function (event) {
    var add = event.target.closest("[data-add-row]");
    if (add) {
      var list = document.querySelector(add.getAttribute("data-add-row"));
      var template = document.querySelector(add.getAttribute("data-template"));
      if (list && template) list.appendChild(template.content.cloneNode(true));
      event.preventDefault();
      return;
    }
    var remove = event.target.closest("[data-remove-row]");
    if (remove) {
      var row = remove.closest(".kv-row");
      if (row) row.remove();
      event.preventDefault();
    }
  });
})();
