/* Audience builder: asks the API for the size, consent and match readiness of the audience
   being built, a moment after each change. Uses CampaignStudio.api from app.js. */
(function () {
  "use strict";

  var form = document.getElementById("audience-form");
  var panel = document.getElementById("audience-preview");
  if (!form || !panel || !window.CampaignStudio) return;
  var DELAY_MS = 350;
  var timer = null;
  var latest = 0;
  // The formats' names as the page shows them (translated on the server), by format key.
  var formatLabels = (function () {
    var el = document.getElementById("format-labels");
    return el ? JSON.parse(el.textContent) : {};
  })();

  function part(name) { return panel.querySelector('[data-preview="' + name + '"]'); }

  function number(value) {
    return value === null || value === undefined ? "—" : Number(value).toLocaleString();
  }

  function idOrNull(name) {
    var value = form.elements[name] ? form.elements[name].value : "";
    return value ? Number(value) : null;
  }

  function definition() {
    var checked = form.querySelector('input[name="cut"]:checked');
    var raw = form.elements.cut_value ? form.elements.cut_value.value : "";
    var cut = checked ? checked.value : "all";
    return {
      segment: idOrNull("segment"),
      scoring_run: idOrNull("scoring_run"),
      offer: idOrNull("offer"),
      cut: cut,
      cut_value: cut === "all" || raw === "" ? null : Number(raw),
    };
  }

  function cell(text, className) {
    var td = document.createElement("td");
    td.textContent = text;
    if (className) td.className = className;
    return td;
  }

  function render(data) {
    var estimated = data.formats.some(function (row) { return row.estimated; });
    part("size").textContent = estimated && !data.suppressed
      ? interpolate(gettext("about %(count)s"), { count: data.display }, true)
      : data.display;
    var evaluated = new Date(data.at).toLocaleTimeString();
    part("note").textContent = data.suppressed
      ? gettext("Hidden: so few members could identify people.")
      : estimated
        ? interpolate(gettext("estimated from a sample of customers; counted exactly once saved. Consent evaluated at %(time)s"), { time: evaluated }, true)
        : interpolate(gettext("Consent evaluated at %(time)s"), { time: evaluated }, true);
    var body = part("formats");
    body.textContent = "";
    var details = [];
    data.formats.forEach(function (row) {
      var tr = document.createElement("tr");
      tr.appendChild(cell(formatLabels[row.format] || row.label));
      tr.appendChild(cell(number(row.exportable), "num"));
      tr.appendChild(cell(number(row.matchable) + (row.estimated ? " ≈" : ""), "num"));
      body.appendChild(tr);
      (row.warnings || []).forEach(function (warning) {
        var note = document.createElement("tr");
        note.className = "row-note";
        var td = cell(warning, "small text-warning");
        td.colSpan = 3;
        note.appendChild(td);
        body.appendChild(note);
      });
      if (row.email !== null && row.exportable !== null) {
        var counts = {
          platform: platformName(row.platform),
          email: number(row.email),
          phone: number(row.phone),
          address: number(row.address),
        };
        details.push(interpolate(row.address === null
          ? gettext("%(platform)s: %(email)s email · %(phone)s phone")
          : gettext("%(platform)s: %(email)s email · %(phone)s phone · %(address)s address"), counts, true));
      }
    });
    var unique = details.filter(function (text, i) { return details.indexOf(text) === i; });
    part("detail").textContent = unique.length ? unique.join("  |  ") : "";
  }

  function platformName(platform) {
    var names = { "Google Ads": gettext("Google Ads"), "Other systems": gettext("Other systems") };
    return names[platform] || platform;
  }

  function showError(message) {
    part("size").textContent = "—";
    part("note").textContent = message;
  }

  function refresh() {
    var body = definition();
    var cutRow = document.getElementById("cut-value-row");
    if (cutRow) cutRow.hidden = body.cut === "all";
    if (!body.segment) { showError(gettext("Choose a segment.")); return; }
    var mine = ++latest;
    panel.classList.add("is-loading");
    window.CampaignStudio.api("POST", form.getAttribute("data-preview-url"), body).then(
      function (res) {
        if (mine !== latest) return;
        panel.classList.remove("is-loading");
        if (!res.ok) {
          var detail = res.data && (res.data.detail || JSON.stringify(res.data));
          showError(detail || gettext("The preview is not available."));
          return;
        }
        render(res.data);
      },
      function () {
        if (mine === latest) showError(gettext("The preview is not available right now."));
      }
    );
  }

  function schedule() {
    window.clearTimeout(timer);
    timer = window.setTimeout(refresh, DELAY_MS);
  }

  form.addEventListener("input", schedule);
  form.addEventListener("change", schedule);
  refresh();
})();
