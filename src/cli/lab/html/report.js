// Draws the run embedded in #run: the lanes chart (SVG), the event list, the filters (client,
// topic, packet id, also read from and written to the URL hash: #client=monitor&topic=a/%23&pid=3
// &zoom=8&v=0) and the zoom. Sets data-ok="1" on <body> once drawn, data-error on any error, and
// data-shown to the number of events the filters let through.
(function () {
  "use strict";
  var body = document.body;
  window.onerror = function (message, source, line) {
    body.dataset.error = String(message) + " (line " + line + ")";
  };

  var run = JSON.parse(document.getElementById("run").textContent);
  var ROW = 34, AXIS = 26, PAD = 12, ZOOM_MAX = 48, MAX_WIDTH = 2000000;
  var state = { client: "", topic: "", pid: "", zoom: 0, selected: -1 };
  var lane = {};
  run.lanes.forEach(function (name, i) { lane[name] = i; });
  run.events.forEach(function (e, i) { e.i = i; });
  var highlighted = {};

  function $(id) { return document.getElementById(id); }

  function esc(s) {
    return String(s).replace(/[&<>"']/g, function (c) {
      return { "&": "&amp;", "<": "&lt;", ">": "&gt;", "\"": "&quot;", "'": "&#39;" }[c];
    });
  }

  function pad6(n) { return ("00000" + n).slice(-6); }

  // Virtual microseconds as the text timeline writes them: 12.345678s.
  function fmt(us) { return Math.floor(us / 1e6) + "." + pad6(us % 1e6) + "s"; }

  function clamp(v, lo, hi) { return Math.max(lo, Math.min(hi, v)); }

  function wild(q) { return q.indexOf("+") >= 0 || q.indexOf("#") >= 0; }

  // Whether the topic filter `filter` matches the topic `topic` (MQTT wildcards + and #).
  function topicMatch(filter, topic) {
    var f = filter.split("/"), t = topic.split("/");
    for (var i = 0; i < f.length; i++) {
      if (f[i] === "#") return true;
      if (i >= t.length) return false;
      if (f[i] !== "+" && f[i] !== t[i]) return false;
    }
    return f.length === t.length;
  }

  function matches(e) {
    if (state.client && e.lane !== state.client) return false;
    if (state.pid !== "" && String(e.pid) !== state.pid) return false;
    var q = state.topic;
    if (q) {
      if (e.topic !== undefined) return e.topic === q || (wild(q) && topicMatch(q, e.topic));
      if (e.filter !== undefined) return e.filter === q || (!wild(q) && topicMatch(e.filter, q));
      return false;
    }
    return true;
  }

  function readHash() {
    var p = new URLSearchParams(location.hash.replace(/^#/, ""));
    state.client = p.get("client") || "";
    state.topic = p.get("topic") || "";
    state.pid = (p.get("pid") || "").trim();
    var z = parseInt(p.get("zoom") || "0", 10);
    state.zoom = isFinite(z) ? clamp(z, 0, ZOOM_MAX) : 0;
    var v = parseInt(p.get("v") || "-1", 10);
    return isFinite(v) && v >= 0 && v < run.violations.length ? v : -1;
  }

  function writeHash() {
    var p = new URLSearchParams();
    if (state.client) p.set("client", state.client);
    if (state.topic) p.set("topic", state.topic);
    if (state.pid) p.set("pid", state.pid);
    if (state.zoom) p.set("zoom", String(state.zoom));
    if (state.selected >= 0) p.set("v", String(state.selected));
    var h = p.toString();
    try {
      history.replaceState(null, "", h ? "#" + h : location.pathname + location.search);
    } catch (err) {
      // Some browsers refuse to rewrite a file:// address; the filters still work.
    }
  }

  function syncControls() {
    var sel = $("f-client");
    if (state.client && !Array.prototype.some.call(sel.options, function (o) { return o.value === state.client; })) {
      sel.insertAdjacentHTML("beforeend", "<option>" + esc(state.client) + "</option>");
    }
    sel.value = state.client;
    $("f-topic").value = state.topic;
    $("f-pid").value = state.pid;
    $("zoom").value = String(state.zoom);
  }

  // Pixels per virtual microsecond: the run fits the width at zoom 0, each step is 2^(1/4).
  function scale() {
    var width = Math.max(200, $("scroll").clientWidth - 2 * PAD);
    var end = Math.max(1, run.end_us);
    return Math.min((width / end) * Math.pow(2, state.zoom / 4), MAX_WIDTH / end);
  }

  // A tick step of 1, 2 or 5 times a power of ten microseconds, at least 90 px apart.
  function tickStep(s) {
    var step = 1;
    while (step * s < 90) {
      var d = String(step).charAt(0);
      step *= d === "2" ? 2.5 : 2;
    }
    return step;
  }

  function tickLabel(us, step) {
    var decimals = step >= 1e6 ? 0 : 6 - String(Math.round(step)).length + 1;
    var s = (us / 1e6).toFixed(clamp(decimals, 0, 6));
    return s + "s";
  }

  function drawLabels() {
    var out = [];
    run.lanes.forEach(function (name, i) {
      out.push("<div class=\"" + (i === 0 ? "broker" : "client") + "\" title=\"" + esc(name) + "\">" + esc(name) + "</div>");
    });
    $("labels").innerHTML = out.join("");
  }

  function drawChart(shown) {
    var s = scale();
    var width = Math.ceil(run.end_us * s) + 2 * PAD;
    var height = AXIS + run.lanes.length * ROW;
    function x(t) { return (PAD + t * s).toFixed(1); }
    function y(name) { return AXIS + lane[name] * ROW + ROW / 2; }
    var out = [];
    out.push("<svg id=\"chart\" width=\"" + width + "\" height=\"" + height + "\">");
    out.push("<defs><marker id=\"ah\" viewBox=\"0 0 10 10\" refX=\"9\" refY=\"5\" markerUnits=\"userSpaceOnUse\" markerWidth=\"7\" markerHeight=\"7\" orient=\"auto\"><path class=\"ah\" d=\"M0,0L10,5L0,10z\"/></marker></defs>");
    var step = tickStep(s);
    for (var t = 0; t <= run.end_us; t += step) {
      out.push("<line class=\"tick\" x1=\"" + x(t) + "\" x2=\"" + x(t) + "\" y1=\"" + (AXIS - 6) + "\" y2=\"" + height + "\"/>");
      out.push("<text class=\"ticklabel\" x=\"" + x(t) + "\" y=\"12\" text-anchor=\"middle\">" + tickLabel(t, step) + "</text>");
    }
    run.lanes.forEach(function (name, i) {
      var ly = AXIS + i * ROW + ROW / 2;
      out.push("<line class=\"lane" + (i === 0 ? " broker" : "") + "\" x1=\"0\" x2=\"" + width + "\" y1=\"" + ly + "\" y2=\"" + ly + "\"/>");
    });
    run.bands.forEach(function (b) {
      if (state.client && b.lanes.length && b.lanes.indexOf(state.client) < 0) return;
      var instant = b.to === b.from;
      var bx = instant ? (PAD + b.from * s - 1.5).toFixed(1) : x(b.from);
      var bw = instant ? "3" : Math.max(3, (b.to - b.from) * s).toFixed(1);
      var tip = "<title>" + esc(fmt(b.from) + (b.to > b.from ? " to " + fmt(b.to) : "") + "  " + b.text) + "</title>";
      var rows = b.lanes.length ? b.lanes.filter(function (l) { return l in lane; }) : [null];
      rows.forEach(function (l) {
        var top = l === null ? AXIS : AXIS + lane[l] * ROW + 2;
        var h = l === null ? height - AXIS : ROW - 4;
        out.push("<rect class=\"b-" + b.kind + (instant ? " instant" : "") + "\" x=\"" + bx + "\" width=\"" + bw + "\" y=\"" + top + "\" height=\"" + h + "\">" + tip + "</rect>");
      });
    });
    [["faults until", run.faults_until_us], ["settle", run.settle_us]].forEach(function (p) {
      if (p[1] === undefined || p[1] > run.end_us) return;
      out.push("<line class=\"phase\" x1=\"" + x(p[1]) + "\" x2=\"" + x(p[1]) + "\" y1=\"" + (AXIS - 8) + "\" y2=\"" + height + "\"><title>" + p[0] + " " + fmt(p[1]) + "</title></line>");
    });
    shown.forEach(function (e) {
      if (!(e.lane in lane)) return;
      var cls = "m k-" + e.kind + (highlighted[e.i] ? " hl" : "");
      var tip = "<title>" + esc(fmt(e.t) + "  " + e.lane + "  " + e.text) + "</title>";
      var ex = x(e.t), ly = y(e.lane), by = y(run.lanes[0]);
      if (e.dir) {
        var from = e.dir === "out" ? ly : by, to = e.dir === "out" ? by : ly;
        out.push("<line class=\"" + cls + "\" data-i=\"" + e.i + "\" x1=\"" + ex + "\" x2=\"" + ex + "\" y1=\"" + from + "\" y2=\"" + (to + (to > from ? -2 : 2)) + "\" marker-end=\"url(#ah)\">" + tip + "</line>");
      } else {
        out.push("<circle class=\"" + cls + "\" data-i=\"" + e.i + "\" cx=\"" + ex + "\" cy=\"" + ly + "\" r=\"3\">" + tip + "</circle>");
      }
    });
    run.violations.forEach(function (v, i) {
      out.push("<line class=\"viol" + (i === state.selected ? " selected" : "") + "\" data-v=\"" + i + "\" x1=\"" + x(v.at_us) + "\" x2=\"" + x(v.at_us) + "\" y1=\"" + (AXIS - 8) + "\" y2=\"" + height + "\"><title>" + esc("[" + v.checker + "] at " + fmt(v.at_us) + ": " + v.message) + "</title></line>");
    });
    out.push("</svg>");
    $("scroll").innerHTML = out.join("");
    return s;
  }

  function drawList(shown) {
    var out = [];
    shown.forEach(function (e) {
      out.push("<tr class=\"row k-" + e.kind + (highlighted[e.i] ? " hl" : "") + "\" id=\"e" + e.i + "\" data-i=\"" + e.i + "\" data-lane=\"" + esc(e.lane) + "\"><td class=\"t\">" + fmt(e.t) + "</td><td class=\"lane\">" + esc(e.lane) + "</td><td>" + esc(e.text) + "</td></tr>");
    });
    $("rows").innerHTML = out.join("");
    $("count").textContent = shown.length + " of " + run.events.length + " events";
    body.dataset.shown = String(shown.length);
  }

  function draw() {
    var shown = run.events.filter(matches);
    drawChart(shown);
    drawList(shown);
    Array.prototype.forEach.call(document.querySelectorAll("li.violation"), function (li) {
      li.classList.toggle("selected", Number(li.dataset.v) === state.selected);
    });
  }

  // Scrolls the violation list to the selected one, if it is out of sight.
  function revealViolation(v) {
    var li = document.querySelector("li.violation[data-v=\"" + v + "\"]");
    if (!li) return;
    var ol = li.parentNode;
    if (li.offsetTop < ol.scrollTop || li.offsetTop + li.offsetHeight > ol.scrollTop + ol.clientHeight) {
      ol.scrollTop = Math.max(0, li.offsetTop - 4);
    }
  }

  // Scrolls the chart so that the instant `t` is in the middle.
  function scrollToTime(t) {
    var sc = $("scroll");
    sc.scrollLeft = Math.max(0, PAD + t * scale() - sc.clientWidth / 2);
  }

  function focusEvent(i) {
    Array.prototype.forEach.call(document.querySelectorAll("tr.focus"), function (r) { r.classList.remove("focus"); });
    var row = $("e" + i), list = $("list");
    if (row) {
      row.classList.add("focus");
      list.scrollTop = Math.max(0, row.offsetTop - list.clientHeight / 2);
    }
  }

  // Selects violation `v`: its events highlighted, the chart and the list scrolled to the
  // first of them (or to its instant); every filter off unless `keepFilters`.
  function select(v, scroll, keepFilters) {
    state.selected = v;
    highlighted = {};
    var violation = run.violations[v];
    violation.events.forEach(function (i) { highlighted[i] = true; });
    if (!keepFilters) {
      state.client = state.topic = state.pid = "";
      syncControls();
    }
    writeHash();
    draw();
    if (scroll) {
      revealViolation(v);
      var first = violation.events.length ? run.events[violation.events[0]] : null;
      scrollToTime(first ? first.t : violation.at_us);
      if (first) focusEvent(first.i);
    }
  }

  function onFilter() {
    state.client = $("f-client").value;
    state.topic = $("f-topic").value.trim();
    state.pid = $("f-pid").value.trim();
    writeHash();
    draw();
  }

  function zoomTo(z) {
    var sc = $("scroll");
    var middle = (sc.scrollLeft + sc.clientWidth / 2 - PAD) / scale();
    state.zoom = clamp(z, 0, ZOOM_MAX);
    $("zoom").value = String(state.zoom);
    writeHash();
    draw();
    scrollToTime(middle);
  }

  function wire() {
    var sel = $("f-client");
    run.lanes.slice(1).concat(["fault", "run"]).forEach(function (name) {
      sel.insertAdjacentHTML("beforeend", "<option>" + esc(name) + "</option>");
    });
    sel.addEventListener("change", onFilter);
    $("f-topic").addEventListener("input", onFilter);
    $("f-pid").addEventListener("input", onFilter);
    $("f-clear").addEventListener("click", function () {
      state.client = state.topic = state.pid = "";
      state.selected = -1;
      highlighted = {};
      syncControls();
      writeHash();
      draw();
    });
    $("zoom").addEventListener("input", function () { zoomTo(Number($("zoom").value)); });
    $("z-in").addEventListener("click", function () { zoomTo(state.zoom + 4); });
    $("z-out").addEventListener("click", function () { zoomTo(state.zoom - 4); });
    $("z-fit").addEventListener("click", function () { zoomTo(0); });
    Array.prototype.forEach.call(document.querySelectorAll("li.violation"), function (li) {
      var pick = function () { select(Number(li.dataset.v), true); };
      li.addEventListener("click", pick);
      li.addEventListener("keydown", function (ev) { if (ev.key === "Enter") pick(); });
    });
    $("scroll").addEventListener("click", function (ev) {
      var target = ev.target.closest ? ev.target.closest("[data-i],[data-v]") : null;
      if (!target) return;
      if (target.dataset.v !== undefined) select(Number(target.dataset.v), true);
      else focusEvent(Number(target.dataset.i));
    });
    $("rows").addEventListener("click", function (ev) {
      var row = ev.target.closest("tr.row");
      if (row) scrollToTime(run.events[Number(row.dataset.i)].t);
    });
    window.addEventListener("hashchange", function () {
      var v = readHash();
      syncControls();
      if (v >= 0) select(v, true, true);
      else draw();
    });
    window.addEventListener("resize", draw);
  }

  wire();
  drawLabels();
  var chosen = readHash();
  syncControls();
  if (chosen >= 0) select(chosen, true, true);
  else draw();
  body.dataset.ok = "1";
})();
