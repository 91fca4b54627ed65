// Merchandising pages: times are kept and shown in UTC; this adds the viewer's own
// clock beside them, so that a rule's window reads right wherever the merchant is.
(function () {
  "use strict";

  function pad(n) { return (n < 10 ? "0" : "") + n; }

  function offsetText(date) {
    var minutes = -date.getTimezoneOffset();
    var sign = minutes < 0 ? "-" : "+";
    minutes = Math.abs(minutes);
    return "UTC" + sign + pad(Math.floor(minutes / 60)) + ":" + pad(minutes % 60);
  }

  function localText(date) {
    return date.getFullYear() + "-" + pad(date.getMonth() + 1) + "-" + pad(date.getDate()) +
      " " + pad(date.getHours()) + ":" + pad(date.getMinutes());
  }

  function hint(date) {
    if (date.getTimezoneOffset() === 0) return "";
    return localText(date) + " your time (" + offsetText(date) + ")";
  }

  document.querySelectorAll("time[data-local-time]").forEach(function (node) {
    var date = new Date(node.getAttribute("datetime"));
    var text = isNaN(date.getTime()) ? "" : hint(date);
    if (!text) return;
    var span = document.createElement("span");
    span.className = "local-time";
    span.textContent = " · " + text;
    node.after(span);
  });

  document.querySelectorAll("[data-utc-offset]").forEach(function (node) {
    node.textContent = "Your browser's clock is " + offsetText(new Date()) + ".";
  });

  // A window's time, as typed in UTC, also in the viewer's clock.
  document.querySelectorAll("input[data-local-hint]").forEach(function (input) {
    var out = document.createElement("div");
    out.className = "help local-time";
    out.setAttribute("aria-live", "polite");
    input.after(out);
    function show() {
      var date = input.value ? new Date(input.value + (input.value.length === 16 ? ":00Z" : "Z")) : null;
      out.textContent = date && !isNaN(date.getTime()) ? hint(date) : "";
    }
    input.addEventListener("input", show);
    show();
  });
})();
