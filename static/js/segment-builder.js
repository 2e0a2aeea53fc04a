/* Segment rule builder: edits a rules tree {"op", "rules": [rule | group]} and shows a live,
   privacy-safe count from POST /api/segments/preview/. Plain JavaScript, no framework. */
(function () {
  "use strict";

  var MAX_NESTING = 2; // root group + groups inside it + one more level
  var DEBOUNCE_MS = 350;
  var NO_VALUE = ["is_set", "is_not_set", "is_true", "is_false", "has_consent", "no_consent"];
  var LIST_OPERATORS = ["in", "not_in"];
  var OTHER = "__other__";

  var mount = document.getElementById("builder");
  if (!mount) return;
  var form = document.getElementById("segment-form");
  var rulesInput = form.querySelector('input[name="rules"]');
  var countBox = document.getElementById("live-count");
  var countValue = countBox.querySelector(".live-count-value");
  var countNote = countBox.querySelector(".live-count-note");
  var share = countBox.querySelector(".live-count-share");
  var defaultNote = countNote.textContent;
  var api = window.CampaignStudio.api;

  var operatorLabels = readJson("operator-labels") || {};
  // The field groups the API names (its words stay English), as the page shows them.
  var groupLabels = {
    Profile: gettext("Profile"),
    Consent: gettext("Consent"),
    Responses: gettext("Responses"),
    Contact: gettext("Contact"),
    Fields: gettext("Fields"),
  };
  var root = normaliseGroup(readJson("initial-rules"));
  var fields = [];
  var fieldsByName = {};
  var showErrors = false;
  var previewTimer = null;
  var previewSeq = 0;

  function readJson(id) {
    var el = document.getElementById(id);
    return el ? JSON.parse(el.textContent) : null;
  }

  function normaliseGroup(node) {
    if (!node || typeof node !== "object") return { op: "and", rules: [] };
    return {
      op: node.op === "or" ? "or" : "and",
      rules: (node.rules || []).map(function (child) {
        return isGroup(child) ? normaliseGroup(child) : Object.assign({}, child);
      }),
    };
  }

  function isGroup(node) {
    return node && typeof node === "object" && Array.isArray(node.rules);
  }

  function el(tag, attrs, children) {
    var node = document.createElement(tag);
    Object.keys(attrs || {}).forEach(function (key) {
      if (key === "text") node.textContent = attrs[key];
      else if (key === "className") node.className = attrs[key];
      else if (key.indexOf("on") === 0) node.addEventListener(key.slice(2), attrs[key]);
      else node.setAttribute(key, attrs[key]);
    });
    (children || []).forEach(function (child) { if (child) node.appendChild(child); });
    return node;
  }

  function icon(name) {
    var span = el("span", { "aria-hidden": "true", className: "builder-icon" });
    span.textContent = name === "x" ? "×" : "+";
    return span;
  }

  /* ---------------- Rule semantics ---------------- */

  function fieldOf(rule) { return fieldsByName[rule.field]; }

  function needsValue(rule) { return NO_VALUE.indexOf(rule.operator) === -1; }

  function isComplete(rule) {
    var field = fieldOf(rule);
    if (!field || field.operators.indexOf(rule.operator) === -1) return false;
    if (!needsValue(rule)) return true;
    var v = rule.value;
    if (rule.operator === "between") {
      return Array.isArray(v) && v.length === 2 && v[0] !== "" && v[1] !== "" && v[0] != null && v[1] != null;
    }
    if (LIST_OPERATORS.indexOf(rule.operator) !== -1) return Array.isArray(v) && v.length > 0;
    return v !== undefined && v !== null && v !== "" && !(typeof v === "number" && isNaN(v));
  }

  function whatIsMissing(rule) {
    if (!fieldOf(rule)) return gettext("Choose a field.");
    if (!rule.operator) return gettext("Choose a condition.");
    if (rule.operator === "between") return gettext("Enter both ends of the range.");
    if (LIST_OPERATORS.indexOf(rule.operator) !== -1) return gettext("Pick at least one value.");
    return gettext("Enter a value.");
  }

  /* The tree with incomplete rules and empty sub-groups left out (what is counted). */
  function completeTree(group, isRoot) {
    var rules = [];
    group.rules.forEach(function (child) {
      if (isGroup(child)) {
        var sub = completeTree(child, false);
        if (sub) rules.push(sub);
      } else if (isComplete(child)) {
        rules.push(cleanRule(child));
      }
    });
    if (!rules.length && !isRoot) return null;
    return { op: group.op, rules: rules };
  }

  function cleanRule(rule) {
    var out = { field: rule.field, operator: rule.operator };
    if (needsValue(rule)) out.value = rule.value;
    var field = fieldOf(rule);
    if (field && field.type === "count" && rule.within_days) out.within_days = rule.within_days;
    return out;
  }

  function countIncomplete(group) {
    return group.rules.reduce(function (n, child) {
      if (isGroup(child)) return n + countIncomplete(child) + (child.rules.length ? 0 : 1);
      return n + (isComplete(child) ? 0 : 1);
    }, 0);
  }

  /* ---------------- Rendering ---------------- */

  function render() {
    mount.innerHTML = "";
    mount.appendChild(renderGroup(root, 0, null));
  }

  function changed(structure) {
    if (structure) render();
    schedulePreview();
  }

  function renderGroup(group, depth, parent) {
    var box = el("div", { className: "builder-group", "data-depth": String(depth) });

    var toggle = el("div", { className: "segmented", role: "group", "aria-label": gettext("Match all or any") });
    [["and", gettext("All")], ["or", gettext("Any")]].forEach(function (pair) {
      toggle.appendChild(el("button", {
        type: "button",
        className: group.op === pair[0] ? "active" : "",
        "aria-pressed": String(group.op === pair[0]),
        text: pair[1],
        onclick: function () { group.op = pair[0]; changed(true); },
      }));
    });
    var head = el("div", { className: "builder-group-head" }, [
      el("span", { className: "match-text", text: gettext("Match") }),
      toggle,
      el("span", { className: "match-text", text: depth ? gettext("of the conditions in this group") : gettext("of these conditions") }),
    ]);
    if (parent) {
      head.appendChild(el("span", { className: "spacer" }));
      head.appendChild(el("button", {
        type: "button",
        className: "btn btn-ghost btn-sm",
        text: gettext("Remove group"),
        onclick: function () { parent.rules.splice(parent.rules.indexOf(group), 1); changed(true); },
      }));
    }
    box.appendChild(head);

    if (!group.rules.length) {
      box.appendChild(el("p", {
        className: "muted small mb-0",
        text: depth ? gettext("This group is empty: add a condition to it.") : gettext("No conditions yet: every customer matches. Add a condition to narrow it down."),
      }));
    }
    group.rules.forEach(function (child, i) {
      if (i > 0) box.appendChild(el("div", { className: "builder-join", text: group.op === "and" ? gettext("and") : gettext("or") }));
      box.appendChild(isGroup(child) ? renderGroup(child, depth + 1, group) : renderRule(child, group));
    });

    var actions = el("div", { className: "builder-actions" }, [
      el("button", {
        type: "button",
        className: "btn btn-sm",
        "data-action": "add-rule",
        onclick: function () { group.rules.push({ field: "", operator: "" }); changed(true); },
      }, [icon("+"), document.createTextNode(gettext("Add condition"))]),
    ]);
    if (depth < MAX_NESTING) {
      actions.appendChild(el("button", {
        type: "button",
        className: "btn btn-ghost btn-sm",
        "data-action": "add-group",
        onclick: function () {
          group.rules.push({ op: group.op === "and" ? "or" : "and", rules: [{ field: "", operator: "" }] });
          changed(true);
        },
      }, [icon("+"), document.createTextNode(gettext("Add group"))]));
    }
    box.appendChild(actions);
    return box;
  }

  function renderRule(rule, group) {
    var field = fieldOf(rule);
    var row = el("div", { className: "builder-rule" });

    var fieldSelect = el("select", { className: "select rule-field", "aria-label": gettext("Field"), "data-role": "field" });
    fieldSelect.appendChild(el("option", { value: "", text: gettext("Choose a field…") }));
    var groups = {};
    fields.forEach(function (f) {
      var name = f.group || "Fields";
      if (!groups[name]) {
        groups[name] = el("optgroup", { label: groupLabels[name] || name });
        fieldSelect.appendChild(groups[name]);
      }
      var option = el("option", { value: f.field, text: f.label });
      if (f.field === rule.field) option.selected = true;
      groups[name].appendChild(option);
    });
    fieldSelect.addEventListener("change", function () {
      var next = fieldsByName[fieldSelect.value];
      rule.field = fieldSelect.value;
      rule.operator = next ? next.operators[0] : "";
      delete rule.value;
      delete rule.within_days;
      delete rule._other;
      defaultValue(rule);
      changed(true);
    });
    row.appendChild(fieldSelect);

    var opSelect = el("select", { className: "select rule-operator", "aria-label": gettext("Condition"), "data-role": "operator" });
    if (field) {
      field.operators.forEach(function (op) {
        var option = el("option", { value: op, text: operatorLabels[op] || op });
        if (op === rule.operator) option.selected = true;
        opSelect.appendChild(option);
      });
    } else {
      opSelect.disabled = true;
      opSelect.appendChild(el("option", { value: "", text: "—" }));
    }
    opSelect.addEventListener("change", function () {
      var wasList = LIST_OPERATORS.indexOf(rule.operator) !== -1;
      var wasRange = rule.operator === "between";
      rule.operator = opSelect.value;
      var isList = LIST_OPERATORS.indexOf(rule.operator) !== -1;
      if (wasList !== isList || wasRange !== (rule.operator === "between") || !needsValue(rule)) {
        delete rule.value;
        defaultValue(rule);
      }
      changed(true);
    });
    row.appendChild(opSelect);

    var value = el("div", { className: "rule-value" }, [field ? valueEditor(rule, field) : null]);
    row.appendChild(value);

    row.appendChild(el("button", {
      type: "button",
      className: "btn btn-ghost builder-remove",
      title: gettext("Remove condition"),
      "aria-label": gettext("Remove condition"),
      onclick: function () { group.rules.splice(group.rules.indexOf(rule), 1); changed(true); },
    }, [icon("x")]));

    if (showErrors && !isComplete(rule)) {
      row.appendChild(el("div", { className: "builder-error", text: whatIsMissing(rule) }));
    }
    return row;
  }

  /* A sensible first value so a new rule counts at once where the field offers values. */
  function defaultValue(rule) {
    var field = fieldOf(rule);
    if (!field || !needsValue(rule)) return;
    if (field.type === "text" && field.values && field.values.length && LIST_OPERATORS.indexOf(rule.operator) === -1 && rule.operator !== "contains") {
      rule.value = field.values[0];
    }
  }

  function valueEditor(rule, field) {
    if (!needsValue(rule)) return null;
    var type = field.type;
    if (rule.operator === "between") {
      var pair = Array.isArray(rule.value) ? rule.value : ["", ""];
      rule.value = pair;
      var inputType = type === "date" ? "date" : "number";
      return el("div", { className: "flex" }, [
        scalarInput(inputType, pair[0], function (v) { pair[0] = v; }, gettext("From")),
        el("span", { className: "muted small", text: gettext("and") }),
        scalarInput(inputType, pair[1], function (v) { pair[1] = v; }, gettext("To")),
      ]);
    }
    if (LIST_OPERATORS.indexOf(rule.operator) !== -1) return listEditor(rule, field);
    if (type === "number") return scalarInput("number", rule.value, function (v) { rule.value = v; }, gettext("Value"));
    if (type === "date") return scalarInput("date", rule.value, function (v) { rule.value = v; }, gettext("Date"));
    if (type === "count") {
      return el("div", { className: "flex" }, [
        scalarInput("count", rule.value, function (v) { rule.value = v; }, gettext("How many")),
        el("span", { className: "muted small nowrap", text: gettext("in last") }),
        scalarInput("count", rule.within_days, function (v) { rule.within_days = v; }, gettext("Days"), true),
        el("span", { className: "muted small", text: gettext("days") }),
      ]);
    }
    var values = field.values || [];
    if (values.length && rule.operator !== "contains" && !rule._other) return valueSelect(rule, values);
    return scalarInput("text", rule.value, function (v) { rule.value = v; }, gettext("Value"));
  }

  function scalarInput(kind, value, set, label, optional) {
    var input = el("input", {
      className: "input",
      type: kind === "count" ? "number" : kind,
      "aria-label": label,
      placeholder: optional ? gettext("any") : label,
      "data-role": "value",
    });
    if (kind === "count") { input.min = "0"; input.step = "1"; }
    if (kind === "number") input.step = "any";
    if (value !== undefined && value !== null) input.value = value;
    input.addEventListener("input", function () {
      var raw = input.value.trim();
      if (kind === "number" || kind === "count") set(raw === "" ? "" : Number(raw));
      else set(raw);
      markRow(input);
      schedulePreview();
    });
    return input;
  }

  function valueSelect(rule, values) {
    var select = el("select", { className: "select", "aria-label": gettext("Value"), "data-role": "value" });
    var options = values.slice();
    if (rule.value && options.indexOf(rule.value) === -1) options.unshift(rule.value);
    options.forEach(function (v) {
      var option = el("option", { value: v, text: v });
      if (v === rule.value) option.selected = true;
      select.appendChild(option);
    });
    select.appendChild(el("option", { value: OTHER, text: gettext("Other value…") }));
    select.addEventListener("change", function () {
      if (select.value === OTHER) {
        rule._other = true;
        rule.value = "";
        changed(true);
        return;
      }
      rule.value = select.value;
      schedulePreview();
    });
    return select;
  }

  function listEditor(rule, field) {
    var chosen = Array.isArray(rule.value) ? rule.value : [];
    rule.value = chosen;
    var values = field.values || [];
    if (!values.length) {
      var input = el("input", {
        className: "input",
        type: "text",
        "aria-label": gettext("Values, separated by commas"),
        placeholder: "a, b, c",
        "data-role": "value",
      });
      input.value = chosen.join(", ");
      input.addEventListener("input", function () {
        rule.value = input.value.split(",").map(function (s) { return s.trim(); }).filter(Boolean);
        markRow(input);
        schedulePreview();
      });
      return input;
    }
    var box = el("div", { className: "chips", role: "group", "aria-label": gettext("Values") });
    values.forEach(function (v) {
      var on = chosen.indexOf(v) !== -1;
      box.appendChild(el("button", {
        type: "button",
        className: "chip" + (on ? " on" : ""),
        "aria-pressed": String(on),
        text: v,
        onclick: function (event) {
          var i = chosen.indexOf(v);
          if (i === -1) chosen.push(v); else chosen.splice(i, 1);
          event.currentTarget.classList.toggle("on", i === -1);
          event.currentTarget.setAttribute("aria-pressed", String(i === -1));
          schedulePreview();
        },
      }));
    });
    return box;
  }

  function markRow(input) {
    var row = input.closest(".builder-rule");
    var error = row && row.querySelector(".builder-error");
    if (error) error.remove();
  }

  /* ---------------- Live count ---------------- */

  function schedulePreview() {
    window.clearTimeout(previewTimer);
    countBox.classList.add("is-loading");
    previewTimer = window.setTimeout(preview, DEBOUNCE_MS);
  }

  function preview() {
    var seq = ++previewSeq;
    var tree = completeTree(root, true);
    var incomplete = countIncomplete(root);
    api("POST", mount.getAttribute("data-preview-url"), { rules: tree }).then(function (res) {
      if (seq !== previewSeq) return; // a newer preview is on its way
      countBox.classList.remove("is-loading", "is-error", "is-suppressed");
      if (!res.ok) {
        countBox.classList.add("is-error");
        countValue.textContent = gettext("Check the rules");
        countNote.textContent = errorText(res.data) || gettext("The count could not be computed.");
        return;
      }
      // An estimate from a sample of the base on a large base; the saved segment is counted exactly.
      countValue.textContent = res.data.estimated && !res.data.suppressed
        ? interpolate(gettext("about %(count)s"), { count: res.data.display }, true)
        : res.data.display;
      countBox.classList.toggle("is-suppressed", !!res.data.suppressed);
      showShare(res.data.suppressed ? 0 : res.data.count);
      countNote.textContent = incomplete
        ? interpolate(
          ngettext("%(n)s unfinished condition not counted yet.", "%(n)s unfinished conditions not counted yet.", incomplete),
          { n: incomplete }, true)
        : res.data.estimated
          ? interpolate(gettext("Estimated from a sample of customers; saved segments are counted exactly. %(note)s"), { note: defaultNote }, true)
          : defaultNote;
    }, function () {
      if (seq !== previewSeq) return;
      countBox.classList.remove("is-loading");
      countBox.classList.add("is-error");
      countValue.textContent = gettext("Offline");
      countNote.textContent = gettext("The server could not be reached; the count will update on the next change.");
    });
  }

  function showShare(count) {
    if (!share) return;
    var total = Number(share.getAttribute("data-total")) || 0;
    var pct = total && count ? Math.min(100, (100 * count) / total) : 0;
    share.querySelector(".progress-bar").style.width = pct + "%";
  }

  function errorText(data) {
    if (!data) return "";
    if (typeof data === "string") return data;
    if (Array.isArray(data)) return data.map(errorText).filter(Boolean).join(" ");
    if (typeof data === "object") {
      if (data.detail) return errorText(data.detail);
      return Object.keys(data).map(function (key) { return errorText(data[key]); }).filter(Boolean).join(" ");
    }
    return String(data);
  }

  /* ---------------- Saving ---------------- */

  form.addEventListener("submit", function (event) {
    if (countIncomplete(root)) {
      event.preventDefault();
      showErrors = true;
      render();
      var first = mount.querySelector(".builder-error");
      if (first) first.scrollIntoView({ block: "center", behavior: "smooth" });
      return;
    }
    rulesInput.value = JSON.stringify(completeTree(root, true));
  });

  /* ---------------- Start ---------------- */

  api("GET", mount.getAttribute("data-fields-url")).then(function (res) {
    if (!res.ok) {
      mount.innerHTML = "";
      mount.appendChild(el("div", { className: "alert alert-error", text: interpolate(gettext("The fields could not be loaded (%(status)s). Reload the page to try again."), { status: res.status }, true) }));
      return;
    }
    fields = Array.isArray(res.data) ? res.data : res.data.fields || res.data.results || [];
    fields.forEach(function (f) { fieldsByName[f.field] = f; });
    if (!root.rules.length) root.rules.push({ field: "", operator: "" });
    render();
    preview();
  });
})();
