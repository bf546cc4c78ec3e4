// Behaviour shared by every page. Markup asks for it with data attributes, not inline event
// handlers, so that the Content-Security-Policy can refuse every inline script.
(function () {
  "use strict";

  // <form data-confirm="Delete this post?">: ask before submitting.
  document.addEventListener("submit", function (event) {
    var form = event.target;
    var question = form instanceof HTMLFormElement ? form.dataset.confirm : undefined;
    if (question && !window.confirm(question)) {
      event.preventDefault();
    }
  });

  // <select data-submit-on-change>: a filter that applies as soon as it is chosen.
  document.addEventListener("change", function (event) {
    var field = event.target;
    if (field instanceof HTMLSelectElement && field.hasAttribute("data-submit-on-change") && field.form) {
      field.form.submit();
    }
  });

  // <button data-copy-target="id" hidden>: copies the text of element #id. Hidden until this
  // runs, so without JavaScript the text stays there to select by hand.
  document.querySelectorAll("button[data-copy-target]").forEach(function (button) {
    var target = document.getElementById(button.dataset.copyTarget || "");
    if (!target || !navigator.clipboard) {
      return;
    }
    button.hidden = false;
    button.addEventListener("click", function () {
      navigator.clipboard.writeText(target.textContent.trim()).then(function () {
        button.textContent = "Copied";
      });
    });
  });

  // <button class="menu-toggle" aria-controls="id" hidden> in the top bar: on a narrow screen
  // (app.css) the navigation folds behind it. Without this script the navigation stays open.
  document.querySelectorAll("button.menu-toggle[aria-controls]").forEach(function (button) {
    var bar = button.closest(".topbar");
    if (!bar) {
      return;
    }
    function show(open) {
      button.setAttribute("aria-expanded", String(open));
      bar.classList.toggle("menu-open", open);
    }
    bar.classList.add("has-menu");
    button.hidden = false;
    button.addEventListener("click", function () {
      show(button.getAttribute("aria-expanded") !== "true");
    });
    bar.addEventListener("keydown", function (event) {
      if (event.key === "Escape" && button.getAttribute("aria-expanded") === "true") {
        show(false);
        button.focus();
      }
    });
  });

  // The offer's custom code runs in a sandboxed frame (<iframe data-custom-code>) that reports the
  // height of its content; a pixel takes no room, a widget the room it needs.
  window.addEventListener("message", function (event) {
    document.querySelectorAll("iframe[data-custom-code]").forEach(function (frame) {
      var height = event.data && event.data.customCodeHeight;
      if (event.source === frame.contentWindow && typeof height === "number" && height >= 0) {
        frame.style.height = Math.min(Math.ceil(height), 2000) + "px";
      }
    });
  });
})();
