(function () {
  "use strict";
  function setAll(open) {
    document.querySelectorAll("details").forEach(function (d) { d.open = open; });
  }
  function openTarget() {
    var id = decodeURIComponent(location.hash.slice(1));
    var el = id && document.getElementById(id);
    for (; el; el = el.parentElement) { if (el.tagName === "DETAILS") { el.open = true; } }
  }
  document.querySelectorAll("[data-expand]").forEach(function (b) {
    b.addEventListener("click", function () { setAll(b.getAttribute("data-expand") === "all"); });
  });
  window.addEventListener("hashchange", openTarget);
  window.addEventListener("beforeprint", function () { setAll(true); });
  openTarget();
})();
