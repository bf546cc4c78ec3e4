// The offer editor, progressively enhanced: every field works without this script.
(function () {
  "use strict";
  var form = document.getElementById("offer-form");
  if (!form) return;

  // Show the fields that apply: price by pricing model, the link when redirecting, and so on.
  function currentValue(name) {
    var inputs = form.querySelectorAll('[name="' + name + '"]');
    for (var i = 0; i < inputs.length; i++) {
      var input = inputs[i];
      if (input.type === "radio") { if (input.checked) return input.value; }
      else if (input.type === "checkbox") { return input.checked ? "on" : ""; }
      else return input.value;
    }
    return "";
  }
  function refreshVisibility() {
    form.querySelectorAll("[data-show-when]").forEach(function (block) {
      var value = currentValue(block.dataset.showWhen);
      var wanted = block.dataset.values ? block.dataset.values.split(" ") : null;
      block.hidden = wanted ? wanted.indexOf(value) === -1 : !value;
    });
  }

  // Live preview of the confirmation email, with sample values. Text only: nothing the creator
  // types is ever interpreted as HTML here.
  var preview = document.getElementById("email-preview");
  var subjectInput = form.querySelector('[data-preview="subject"]');
  var bodyInput = form.querySelector('[data-preview="body"]');
  function fill(text) {
    var title = (form.querySelector('[name="title"]') || {}).value || "Your offer";
    var samples = {
      buyer_name: "Alex Buyer",
      offer_title: title,
      login_link: location.origin + "/accounts/login-link/…",
      community_url: location.origin + "/"
    };
    return text.replace(/\{\{\s*([a-zA-Z_]+)\s*\}\}/g, function (match, name) {
      return Object.prototype.hasOwnProperty.call(samples, name) ? samples[name] : match;
    });
  }
  function refreshPreview() {
    if (!preview) return;
    preview.hidden = false;
    var subject = subjectInput.value.trim() || preview.dataset.defaultSubject;
    var body = bodyInput.value.trim() || preview.dataset.defaultBody;
    document.getElementById("email-preview-subject").textContent = fill(subject);
    document.getElementById("email-preview-body").textContent = fill(body);
  }

  // Before saving: say how many buyers a change of hub groups affects.
  var initialGroups = JSON.parse((document.getElementById("initial-groups") || {}).textContent || "[]").map(String);
  var buyers = parseInt(form.dataset.buyers || "0", 10);
  var groupNotice = document.getElementById("groups-live-notice");
  function refreshGroupNotice() {
    if (!groupNotice || !buyers) return;
    var checked = Array.prototype.map.call(
      form.querySelectorAll('[name="hub_groups"]:checked'), function (box) { return box.value; });
    var added = checked.filter(function (id) { return initialGroups.indexOf(id) === -1; }).length;
    var removed = initialGroups.filter(function (id) { return checked.indexOf(id) === -1; }).length;
    if (!added && !removed) { groupNotice.hidden = true; return; }
    var parts = [];
    if (added) parts.push("gives " + added + " more group" + (added > 1 ? "s" : "") + " to");
    if (removed) parts.push("takes " + removed + " group" + (removed > 1 ? "s" : "") + " away from");
    groupNotice.textContent = "This change " + parts.join(" and ") + " " + buyers + " existing buyer" +
      (buyers > 1 ? "s" : "") + " (those with another source keep it). You'll confirm when you save.";
    groupNotice.hidden = false;
  }

  form.addEventListener("input", function () { refreshVisibility(); refreshPreview(); refreshGroupNotice(); });
  form.addEventListener("change", function () { refreshVisibility(); refreshGroupNotice(); });
  refreshVisibility();
  refreshPreview();
  refreshGroupNotice();

  // After a save that needs attention, the page opens with it at the top (the error summary,
  // or the buyers confirmation): bring keyboard focus, and so the screen, there too.
  var attention = document.getElementById("error-summary") || document.getElementById("groups-impact");
  if (attention) attention.focus();

  // A link of the summary puts the cursor in its field, not only the field on screen.
  var summary = document.getElementById("error-summary");
  if (summary) summary.addEventListener("click", function (event) {
    var link = event.target.closest('a[href^="#"]');
    var field = link && document.getElementById(link.getAttribute("href").slice(1));
    if (!field) return;
    event.preventDefault();
    var label = document.querySelector('label[for="' + field.id + '"]');
    (label || field).scrollIntoView({ block: "center" });
    field.focus({ preventScroll: true });
  });
})();
