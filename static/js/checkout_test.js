// A test purchase's checklist updates itself: it asks the page's JSON twin for the steps every
// few seconds and rewrites the ones that changed (the list is aria-live, so a screen reader
// announces each change). Without JavaScript the page reloads itself instead.
(function () {
  "use strict";
  var section = document.getElementById("checklist");
  var url = section && section.dataset.statusUrl;
  if (!url) {
    return;
  }
  var BADGES = { done: "badge ok", failed: "badge danger", waiting: "badge warn" };
  var delay = 2000;

  function setText(element, text) {
    if (element && element.textContent !== text) {
      element.textContent = text;
    }
  }

  function showStep(item, step) {
    var state = "step step-" + step.state;
    if (item.className !== state) {
      item.className = state;
    }
    var badge = item.querySelector("[data-part=state]");
    if (badge && badge.className !== BADGES[step.state]) {
      badge.className = BADGES[step.state];
    }
    setText(badge, step.state_label);
    setText(item.querySelector("[data-part=title]"), step.title);
    setText(item.querySelector("[data-part=detail]"), step.detail);
    var fix = item.querySelector("[data-part=fix]");
    setText(fix, step.fix);
    if (fix) {
      fix.hidden = !step.fix;
    }
    var linkPart = item.querySelector("[data-part=link]");
    var link = linkPart && linkPart.querySelector("a");
    if (link) {
      if (link.getAttribute("href") !== step.link_url) {
        link.setAttribute("href", step.link_url || "#");
      }
      setText(link, step.link_text);
      linkPart.hidden = !step.link_url;
    }
  }

  function show(checklist) {
    setText(document.getElementById("checklist-summary"), checklist.summary);
    checklist.steps.forEach(function (step) {
      var item = section.querySelector("[data-step='" + step.number + "']");
      if (item) {
        showStep(item, step);
      }
    });
    var close = document.getElementById("checklist-close");
    if (close) {
      close.hidden = !checklist.can_close;
    }
    return !checklist.closed;
  }

  function poll() {
    fetch(url, { headers: { Accept: "application/json" }, credentials: "same-origin" })
      .then(function (response) {
        if (!response.ok) {
          throw new Error(response.status);
        }
        return response.json();
      })
      .then(function (checklist) {
        delay = 2000;
        if (show(checklist)) {
          window.setTimeout(poll, delay);
        }
      })
      .catch(function () {
        delay = Math.min(delay * 2, 10000); // the site is busy or down: ask less often
        window.setTimeout(poll, delay);
      });
  }

  window.setTimeout(poll, delay);
})();
