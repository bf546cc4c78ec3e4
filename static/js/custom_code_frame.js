// Runs beside an offer's custom code in its sandboxed frame: tells the checkout page how tall the
// content is, so the frame can fit it. The message holds a number and nothing else.
(function () {
  "use strict";
  var last = -1;
  function report() {
    var height = Math.ceil(document.documentElement.getBoundingClientRect().height);
    if (height !== last) {
      last = height;
      window.parent.postMessage({ customCodeHeight: height }, "*");
    }
  }
  if (window.ResizeObserver) {
    new ResizeObserver(report).observe(document.documentElement);
  }
  window.addEventListener("load", report);
  report();
})();
