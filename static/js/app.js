/* Campaign Studio page behaviour: live job progress, job cancel, charts, small form helpers.
   Plain JavaScript, no framework; every page loads this file. */
(function () {
  "use strict";

  var POLL_MS = 1500;
  var FINISHED = ["succeeded", "failed", "cancelled"];
  var STATUS_LABELS = {
    queued: gettext("Queued"),
    running: gettext("Running"),
    succeeded: gettext("Succeeded"),
    failed: gettext("Failed"),
    cancelled: gettext("Cancelled"),
  };

  function csrfToken() {
    var meta = document.querySelector('meta[name="csrf-token"]');
    return meta ? meta.getAttribute("content") : "";
  }

  /* JSON request to our own API with the session cookie and CSRF header. */
  function api(method, url, body) {
    var options = {
      method: method,
      credentials: "same-origin",
      headers: { Accept: "application/json" },
    };
    if (method !== "GET") {
      options.headers["X-CSRFToken"] = csrfToken();
      options.headers["Content-Type"] = "application/json";
      options.body = JSON.stringify(body || {});
    }
    return fetch(url, options).then(function (response) {
      return response
        .json()
        .catch(function () { return {}; })
        .then(function (data) { return { ok: response.ok, status: response.status, data: data }; });
    });
  }

  /* ---------------- The phone menu ---------------- */

  document.querySelectorAll("[data-menu-toggle]").forEach(function (button) {
    button.addEventListener("click", function () {
      var sidebar = button.closest(".sidebar");
      var open = sidebar.classList.toggle("menu-open");
      button.setAttribute("aria-expanded", open ? "true" : "false");
    });
  });

  /* ---------------- Texts stored in English, shown translated ----------------
     A job's message and outlook come from the API in English. Outside English, a page with a
     running job carries the translations (#stored-texts, from marketing/stored_texts.py): the
     message a text was made from is found by its pattern, and filled again translated. */

  var storedTexts = null;

  function storedCatalogue() {
    if (storedTexts) return storedTexts;
    var source = document.getElementById("stored-texts");
    if (!source) return null;
    var data = JSON.parse(source.textContent);
    var tables = {};
    Object.keys(data.scopes).forEach(function (scope) {
      var fixed = {};
      var patterns = [];
      Object.keys(data.scopes[scope]).forEach(function (message) {
        var translation = data.scopes[scope][message];
        if (/%\(\w+\)s/.test(message)) {
          patterns.push(storedPattern(message, translation));
        } else {
          fixed[message] = translation;
        }
      });
      patterns.sort(function (a, b) { return b.length - a.length; });
      tables[scope] = { fixed: fixed, patterns: patterns };
    });
    storedTexts = {
      tables: tables,
      lists: data.lists,
      separator: data.separator,
      texts: data.texts,
      words: data.words,
    };
    return storedTexts;
  }

  function storedPattern(message, translation) {
    var names = [];
    var regex = "";
    var length = 0;
    var last = 0;
    var placeholder = /%\((\w+)\)s/g;
    var found;
    function literal(part) {
      length += part.length;
      return part.replace(/%%/g, "%").replace(/[.*+?^${}()|[\]\\]/g, "\\$&");
    }
    while ((found = placeholder.exec(message)) !== null) {
      regex += literal(message.slice(last, found.index));
      var at = names.indexOf(found[1]);
      if (at === -1) {
        names.push(found[1]);
        regex += "([\\s\\S]*?)";
      } else {
        regex += "\\" + (at + 1);
      }
      last = placeholder.lastIndex;
    }
    regex += literal(message.slice(last));
    return { regex: new RegExp("^" + regex + "$"), names: names, translation: translation, length: length };
  }

  function fill(format, values) {
    return format.replace(/%\((\w+)\)s|%%/g, function (all, name) {
      return name ? values[name] : "%";
    });
  }

  function storedText(text, scope) {
    var catalogue = storedCatalogue();
    scope = scope || "";
    if (!text || !catalogue) return text;
    if (catalogue.lists[scope]) {
      return text.split(catalogue.lists[scope]).map(function (item) {
        return storedOne(catalogue, item, scope);
      }).join(catalogue.separator);
    }
    return storedOne(catalogue, text, scope);
  }

  function storedOne(catalogue, text, scope) {
    if (!text) return text;
    var table = catalogue.tables[scope] || catalogue.tables[""];
    if (Object.prototype.hasOwnProperty.call(table.fixed, text)) return table.fixed[text];
    for (var i = 0; i < table.patterns.length; i++) {
      var pattern = table.patterns[i];
      var match = pattern.regex.exec(text);
      if (!match) continue;
      var values = {};
      pattern.names.forEach(function (name, at) {
        var value = match[at + 1];
        if (name && catalogue.tables[name]) {
          value = storedText(value, name);
        } else if (catalogue.texts.indexOf(name) !== -1) {
          value = storedOne(catalogue, value, "");
        }
        values[name] = value;
      });
      return fill(pattern.translation, values);
    }
    if (Object.prototype.hasOwnProperty.call(catalogue.words, text)) return catalogue.words[text];
    return gettext(text);
  }

  /* ---------------- Live job progress ---------------- */

  var polling = {};

  function jobElements(jobId) {
    return document.querySelectorAll('.job[data-job-id="' + jobId + '"]');
  }

  function renderJob(el, job) {
    var pct = Math.max(0, Math.min(100, Number(job.progress) || 0));
    el.setAttribute("data-status", job.status);
    var bar = el.querySelector(".progress-bar");
    if (bar) bar.style.width = pct + "%";
    var track = el.querySelector(".progress");
    if (track) track.setAttribute("aria-valuenow", String(pct));
    var pctText = el.querySelector(".job-pct");
    if (pctText) pctText.textContent = pct + "%";
    var badge = el.querySelector(".job-status");
    if (badge) {
      badge.className = "badge badge-dot job-status badge-" + job.status;
      badge.textContent = STATUS_LABELS[job.status] || job.status;
    }
    var message = el.querySelector(".job-message");
    if (message) message.textContent = storedText(job.message || "");
    var outlook = el.querySelector(".job-outlook");
    if (outlook && job.outlook !== undefined) {
      outlook.textContent = storedText(job.outlook || "");
      outlook.hidden = !job.outlook;
    }
  }

  function refreshRegions(ids) {
    if (!ids.length) return Promise.resolve();
    return fetch(window.location.href, { credentials: "same-origin" })
      .then(function (r) { return r.text(); })
      .then(function (html) {
        var doc = new DOMParser().parseFromString(html, "text/html");
        ids.forEach(function (id) {
          var fresh = doc.getElementById(id);
          var current = document.getElementById(id);
          if (fresh && current) {
            current.replaceWith(fresh);
            init(fresh);
          }
        });
      });
  }

  function onJobFinished(jobId) {
    var regions = [];
    jobElements(jobId).forEach(function (el) {
      (el.getAttribute("data-refresh") || "").split(/\s+/).forEach(function (id) {
        if (id && regions.indexOf(id) === -1) regions.push(id);
      });
    });
    document.querySelectorAll('[data-while-running="' + jobId + '"]').forEach(function (el) {
      el.hidden = true;
    });
    refreshRegions(regions);
  }

  function poll(jobId) {
    if (polling[jobId]) return;
    polling[jobId] = true;
    var failures = 0;

    function retry() {
      failures += 1;
      // Keep trying through a short outage or an error answer, but slow down.
      window.setTimeout(tick, Math.min(POLL_MS * Math.pow(2, failures), 15000));
    }

    function tick() {
      api("GET", "/api/jobs/" + jobId + "/")
        .then(function (res) {
          if (!res.ok) throw new Error("HTTP " + res.status);
          failures = 0;
          jobElements(jobId).forEach(function (el) { renderJob(el, res.data); });
          if (FINISHED.indexOf(res.data.status) !== -1) {
            delete polling[jobId];
            onJobFinished(jobId);
          } else {
            window.setTimeout(tick, POLL_MS);
          }
        })
        .catch(retry);
    }
    window.setTimeout(tick, 300);
  }

  function initJobs(root) {
    root.querySelectorAll(".job[data-job-id]").forEach(function (el) {
      if (FINISHED.indexOf(el.getAttribute("data-status")) === -1) {
        poll(el.getAttribute("data-job-id"));
      }
    });
    root.querySelectorAll("[data-cancel-job]").forEach(function (button) {
      button.addEventListener("click", function () {
        var jobId = button.getAttribute("data-cancel-job");
        if (!window.confirm(gettext("Cancel this job? Work already done by it is rolled back where possible."))) return;
        button.disabled = true;
        api("POST", "/api/jobs/" + jobId + "/cancel/").then(function (res) {
          if (!res.ok) {
            button.disabled = false;
            window.alert((res.data && res.data.detail) || gettext("The job could not be cancelled."));
            return;
          }
          jobElements(jobId).forEach(function (el) { renderJob(el, res.data); });
          if (FINISHED.indexOf(res.data.status) !== -1) button.hidden = true;
          poll(jobId);
        });
      });
    });
  }

  /* ---------------- Charts (figures built server-side with plotly) ---------------- */

  function initCharts(root) {
    if (!window.Plotly) return;
    root.querySelectorAll("[data-plotly]").forEach(function (el) {
      var source = document.getElementById(el.getAttribute("data-plotly"));
      if (!source) return;
      var figure = JSON.parse(source.textContent);
      window.Plotly.newPlot(el, figure.data, figure.layout, {
        displayModeBar: false,
        responsive: true,
      });
    });
  }

  /* ---------------- Small form helpers ---------------- */

  function initForms(root) {
    root.querySelectorAll("[data-autosubmit]").forEach(function (el) {
      el.addEventListener("change", function () { el.form.submit(); });
    });
    // A "Go back" link (the Content-Security-Policy refuses javascript: links).
    root.querySelectorAll("[data-history-back]").forEach(function (link) {
      link.addEventListener("click", function (event) {
        event.preventDefault();
        window.history.back();
      });
    });
    root.querySelectorAll("form[data-confirm]").forEach(function (form) {
      form.addEventListener("submit", function (event) {
        if (!window.confirm(form.getAttribute("data-confirm"))) event.preventDefault();
      });
    });
    // Radio groups that show the panel for the chosen value: data-panel="<group>:<value>".
    root.querySelectorAll("input[data-panel-group]").forEach(function (input) {
      input.addEventListener("change", function () {
        var group = input.getAttribute("data-panel-group");
        document.querySelectorAll('[data-panel^="' + group + ':"]').forEach(function (panel) {
          panel.hidden = panel.getAttribute("data-panel") !== group + ":" + input.value;
        });
      });
    });
    // Mapping forms: say live which required fields no column is mapped to yet.
    root.querySelectorAll("form[data-required-targets]").forEach(function (form) {
      var required = form.getAttribute("data-required-targets").split(" ").filter(Boolean);
      var note = form.querySelector("[data-missing-required]");
      if (!required.length || !note) return;
      function labelOf(name) {
        var option = form.querySelector('option[value="' + name + '"]');
        if (!option) return name;
        return option.getAttribute("data-label") || option.textContent.replace(" (required)", "");
      }
      function update() {
        var chosen = Array.prototype.map.call(form.querySelectorAll("select"), function (s) { return s.value; });
        var missing = required.filter(function (name) { return chosen.indexOf(name) === -1; });
        note.textContent = missing.length
          ? interpolate(gettext("Not mapped yet (required): %(fields)s"), { fields: missing.map(labelOf).join(", ") }, true)
          : gettext("All required fields are mapped");
        note.classList.toggle("text-danger", missing.length > 0);
        note.classList.toggle("text-success", missing.length === 0);
      }
      form.addEventListener("change", update);
      update();
    });
    // Disable submit buttons once a form is sent, so a slow upload is not sent twice.
    root.querySelectorAll("form[data-busy-text]").forEach(function (form) {
      form.addEventListener("submit", function () {
        var button = form.querySelector('button[type="submit"]');
        if (!button) return;
        window.setTimeout(function () {
          button.disabled = true;
          button.textContent = form.getAttribute("data-busy-text");
        }, 0);
      });
    });
  }

  function init(root) {
    initJobs(root);
    initCharts(root);
    initForms(root);
  }

  window.CampaignStudio = { api: api, csrfToken: csrfToken, storedText: storedText };

  document.addEventListener("DOMContentLoaded", function () { init(document); });
})();
