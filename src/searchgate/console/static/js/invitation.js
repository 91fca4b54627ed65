// The invitation link carries its code after "#", which browsers never send to a
// server: copy it into the form, then drop it from the address bar and history.
(function () {
  "use strict";
  var code = window.location.hash.slice(1);
  var input = document.querySelector("[data-invitation-token]");
  if (!input || code.indexOf("sgi_") !== 0) return;
  input.value = decodeURIComponent(code);
  history.replaceState(null, "", window.location.pathname);
}());
