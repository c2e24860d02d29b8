/* numberok Lists page: lists, entries, CSV, match preview, access log, all
 * through the JSON API.  Plain ES5-style JavaScript, no dependencies.  Text
 * from the server only ever goes into the page with textContent. */
(function () {
  "use strict";

  var csrfMeta = document.querySelector('meta[name="csrf-token"]');
  var csrf = csrfMeta ? csrfMeta.getAttribute("content") : "";
  var current = null;
  var byId = function (id) { return document.getElementById(id); };

  function api(method, path, body, type) {
    var options = {method: method, credentials: "same-origin",
                   headers: {"X-Numberok-Page": "1", "X-CSRF-Token": csrf}};
    if (body !== undefined) {
      options.headers["Content-Type"] = type || "application/json";
      options.body = type ? body : JSON.stringify(body);
    }
    return fetch(path, options).then(function (response) {
      if (response.status === 401) {
        window.location.href = "/login";
        throw new Error("logged out");
      }
      if (response.status === 204) { return {ok: true, data: {}}; }
      return response.json().then(function (data) {
        return {ok: response.ok, data: data};
      });
    });
  }

  function cell(text) {
    var td = document.createElement("td");
    td.textContent = text === null || text === undefined ? "" : String(text);
    return td;
  }

  function showErrors(id, data) {
    var lines = [];
    var errors = (data && data.errors) || {};
    Object.keys(errors).forEach(function (k) { lines.push(k + ": " + errors[k]); });
    byId(id).textContent = lines.join("\n");
  }

  function path(name) { return "/api/lists/" + encodeURIComponent(name); }

  function loadLists() {
    return api("GET", "/api/lists").then(function (r) {
      var box = byId("list-items");
      box.textContent = "";
      r.data.lists.forEach(function (l) {
        var b = document.createElement("button");
        b.type = "button";
        b.className = "btn small ghost list-item" + (l.name === current ? " selected" : "");
        var sw = document.createElement("span");
        sw.className = "swatch " + l.kind;
        b.appendChild(sw);
        b.appendChild(document.createTextNode(l.name + " (" + l.kind + ", " + l.entries + ")"));
        b.setAttribute("data-name", l.name);
        b.addEventListener("click", function () { select(l); });
        box.appendChild(b);
      });
      if (!current && r.data.lists.length) { select(r.data.lists[0]); }
    });
  }

  function select(l) {
    current = l.name;
    var f = byId("list-form");
    f.elements.name.value = l.name;
    f.elements.kind.value = l.kind;
    f.elements.distance.value = l.distance;
    f.elements.scope.value = l.scope.join(" ");
    byId("entries-title").textContent = "of " + l.name;
    byId("export").setAttribute("href", path(l.name) + "/entries.csv");
    loadLists();
    loadEntries();
  }

  function loadEntries() {
    if (!current) { return; }
    var q = byId("search").value;
    api("GET", path(current) + "/entries?limit=200&q=" + encodeURIComponent(q)).then(function (r) {
      var body = byId("entry-rows");
      body.textContent = "";
      (r.data.entries || []).forEach(function (e) {
        var tr = document.createElement("tr");
        var plate = cell(e.plate);
        plate.className = "plate";
        tr.appendChild(plate);
        tr.appendChild(cell(e.owner));
        tr.appendChild(cell(e.comment));
        tr.appendChild(cell((e.validFrom || "") + (e.validUntil ? " .. " + e.validUntil : "")));
        tr.appendChild(cell(e.windows.join(" | ")));
        tr.appendChild(cell(e.visitsLeft));
        var actions = document.createElement("td");
        var edit = document.createElement("button");
        edit.type = "button"; edit.className = "btn small ghost"; edit.textContent = "Edit";
        edit.addEventListener("click", function () { fillEntry(e); });
        var del = document.createElement("button");
        del.type = "button"; del.className = "btn small ghost"; del.textContent = "Delete";
        del.setAttribute("data-plate", e.plate);
        del.addEventListener("click", function () {
          api("DELETE", path(current) + "/entries/" + encodeURIComponent(e.plate)).then(function () {
            loadEntries(); loadLists();
          });
        });
        actions.appendChild(edit); actions.appendChild(del);
        tr.appendChild(actions);
        body.appendChild(tr);
      });
      byId("entries-count").textContent = (r.data.total || 0) + " entries";
    });
  }

  function fillEntry(e) {
    var f = byId("entry-form").elements;
    ["plate", "owner", "comment", "validFrom", "validUntil"].forEach(function (k) {
      f[k].value = e[k] || "";
    });
    f.windows.value = (e.windows || []).join(" | ");
    f.visitsLeft.value = e.visitsLeft === null ? "" : e.visitsLeft;
  }

  byId("list-form").addEventListener("submit", function (ev) {
    ev.preventDefault();
    var f = ev.target.elements;
    var scope = f.scope.value.split(/[\s,;]+/).filter(function (s) { return s; });
    var body = {kind: f.kind.value, distance: parseInt(f.distance.value || "0", 10), scope: scope};
    api("PUT", path(f.name.value), body).then(function (r) {
      showErrors("list-errors", r.data);
      if (r.ok) { current = r.data.name; select(r.data); }
    });
  });

  byId("delete-list").addEventListener("click", function () {
    if (!current || !window.confirm("Delete list " + current + " and all its entries?")) { return; }
    api("DELETE", path(current)).then(function () { current = null; loadLists(); });
  });

  byId("entry-form").addEventListener("submit", function (ev) {
    ev.preventDefault();
    if (!current) { byId("entry-errors").textContent = "create or pick a list first"; return; }
    var f = ev.target.elements;
    var body = {plate: f.plate.value, owner: f.owner.value, comment: f.comment.value,
                validFrom: f.validFrom.value || null, validUntil: f.validUntil.value || null,
                windows: f.windows.value.split("|").map(function (s) { return s.trim(); })
                  .filter(function (s) { return s; }),
                visitsLeft: f.visitsLeft.value === "" ? null : parseInt(f.visitsLeft.value, 10)};
    api("POST", path(current) + "/entries", body).then(function (r) {
      showErrors("entry-errors", r.data);
      if (r.ok) { ev.target.reset(); loadEntries(); loadLists(); }
    });
  });

  byId("search").addEventListener("input", loadEntries);

  byId("import").addEventListener("change", function (ev) {
    var file = ev.target.files[0];
    if (!file || !current) { return; }
    file.arrayBuffer().then(function (buffer) {
      return api("PUT", path(current) + "/entries", buffer, "text/csv");
    }).then(function (r) {
      showErrors("entry-errors", r.data);
      if (r.ok) { byId("entry-errors").textContent = "imported " + r.data.entries + " entries"; }
      ev.target.value = "";
      loadEntries(); loadLists();
    });
  });

  byId("preview-form").addEventListener("submit", function (ev) {
    ev.preventDefault();
    var f = ev.target.elements;
    var q = "?plate=" + encodeURIComponent(f.plate.value);
    if (f.distance.value !== "") { q += "&distance=" + encodeURIComponent(f.distance.value); }
    api("GET", "/api/lists/match" + q).then(function (r) {
      var out = byId("preview-decision");
      if (!r.ok) { showErrors("preview-decision", r.data); return; }
      var d = r.data.decision;
      out.textContent = "Decision: " + d.Access + " (" + d.reason + ")";
      var body = byId("preview-rows");
      body.textContent = "";
      r.data.matches.forEach(function (m) {
        var tr = document.createElement("tr");
        [m.list, m.kind, m.plate, m.match, m.activeNow ? "yes" : "no"].forEach(function (v) {
          tr.appendChild(cell(v));
        });
        body.appendChild(tr);
      });
    });
  });

  function loadAccessLog() {
    api("GET", "/api/access-log?limit=50").then(function (r) {
      var body = byId("access-rows");
      body.textContent = "";
      (r.data.rows || []).forEach(function (row) {
        var tr = document.createElement("tr");
        [new Date(row.time_ms).toLocaleString(), row.plate, row.channel + " / " + row.zone,
         row.list, row.entry, row.match, row.decision, row.action, row.result,
         row.latency_ms].forEach(function (v) { tr.appendChild(cell(v)); });
        body.appendChild(tr);
      });
    });
  }

  var wanted = new URLSearchParams(window.location.search).get("plate");
  if (wanted) { byId("entry-form").elements.plate.value = wanted; }
  loadLists();
  loadAccessLog();
  window.setInterval(loadAccessLog, 5000);
})();
