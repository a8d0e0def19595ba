/* posinv back-office charts: draws bar and line charts as inline SVG from
   the JSON that each report page embeds (no library, no CDN). Each
   <div class="bo-chart" data-source="ID"> reads <script id="ID"> holding
   {title, kind: "bar"|"line", labels: [...], series: [{name, values}]}.
   When done it sets data-drawn to the number of marks drawn (bars or line
   points), so a test can tell a drawn chart from an empty box. */
(function () {
  "use strict";
  var NS = "http://www.w3.org/2000/svg";
  var COLORS = ["#417690", "#e0a030", "#5a9e4b", "#b04a4a", "#7d5ba6"];

  function el(name, attrs, parent) {
    var node = document.createElementNS(NS, name);
    Object.keys(attrs).forEach(function (key) { node.setAttribute(key, attrs[key]); });
    if (parent) { parent.appendChild(node); }
    return node;
  }

  function text(parent, x, y, value, attrs) {
    var node = el("text", Object.assign({ x: x, y: y, "font-size": 10, fill: "#333" }, attrs || {}), parent);
    node.textContent = value;
    return node;
  }

  function niceMax(value) {
    if (value <= 0) { return 1; }
    var power = Math.pow(10, Math.floor(Math.log10(value)));
    var steps = [1, 2, 2.5, 5, 10];
    for (var i = 0; i < steps.length; i++) {
      if (steps[i] * power >= value) { return steps[i] * power; }
    }
    return 10 * power;
  }

  function draw(box, data) {
    var width = 640, height = 260, left = 60, right = 10, top = 24, bottom = 60;
    var plotW = width - left - right, plotH = height - top - bottom;
    var svg = el("svg", { viewBox: "0 0 " + width + " " + height, width: "100%", role: "img", "aria-label": data.title });
    var labels = data.labels || [];
    var series = data.series || [];
    var all = [];
    series.forEach(function (s) { all = all.concat(s.values); });
    var minValue = Math.min.apply(null, all.concat([0]));
    var maxValue = niceMax(Math.max.apply(null, all.concat([0])));
    var span = maxValue - minValue || 1;
    var y = function (v) { return top + plotH - ((v - minValue) / span) * plotH; };
    var marks = 0;

    for (var g = 0; g <= 4; g++) {
      var value = minValue + (span * g) / 4;
      el("line", { x1: left, x2: width - right, y1: y(value), y2: y(value), stroke: "#ddd" }, svg);
      text(svg, left - 4, y(value) + 3, Math.round(value * 100) / 100, { "text-anchor": "end" });
    }
    el("line", { x1: left, x2: width - right, y1: y(0), y2: y(0), stroke: "#888" }, svg);

    if (!labels.length) {
      text(svg, width / 2, height / 2, "No data for this period", { "text-anchor": "middle", "font-size": 14 });
    }
    var slot = plotW / Math.max(labels.length, 1);
    var every = Math.ceil(labels.length / 20);
    labels.forEach(function (label, i) {
      if (i % every === 0) {
        var x = left + slot * i + slot / 2;
        text(svg, x, top + plotH + 12, String(label).slice(0, 14), {
          "text-anchor": "end", transform: "rotate(-40 " + x + " " + (top + plotH + 12) + ")"
        });
      }
    });

    series.forEach(function (s, si) {
      var color = COLORS[si % COLORS.length];
      if (data.kind === "line") {
        var points = s.values.map(function (v, i) { return (left + slot * i + slot / 2) + "," + y(v); });
        if (points.length) {
          el("polyline", { points: points.join(" "), fill: "none", stroke: color, "stroke-width": 2, "class": "bo-mark-line" }, svg);
          s.values.forEach(function (v, i) {
            var dot = el("circle", { cx: left + slot * i + slot / 2, cy: y(v), r: 2.5, fill: color, "class": "bo-mark" }, svg);
            el("title", {}, dot).textContent = labels[i] + ": " + v;
            marks++;
          });
        }
      } else {
        var barW = Math.max((slot * 0.8) / series.length, 1);
        s.values.forEach(function (v, i) {
          var x = left + slot * i + slot * 0.1 + barW * si;
          var bar = el("rect", {
            x: x, y: Math.min(y(v), y(0)), width: barW, height: Math.max(Math.abs(y(v) - y(0)), 0.5),
            fill: color, "class": "bo-mark"
          }, svg);
          el("title", {}, bar).textContent = labels[i] + " – " + s.name + ": " + v;
          marks++;
        });
      }
      el("rect", { x: left + si * 130, y: 4, width: 10, height: 10, fill: color }, svg);
      text(svg, left + si * 130 + 14, 13, s.name);
    });
    box.innerHTML = "";
    box.appendChild(svg);
    box.setAttribute("data-drawn", String(marks));
  }

  function drawAll() {
    document.querySelectorAll(".bo-chart[data-source]").forEach(function (box) {
      var source = document.getElementById(box.getAttribute("data-source"));
      if (!source) { box.setAttribute("data-error", "missing data"); return; }
      try {
        draw(box, JSON.parse(source.textContent));
      } catch (err) {
        box.setAttribute("data-error", String(err));
      }
    });
  }

  if (document.readyState === "loading") {
    document.addEventListener("DOMContentLoaded", drawAll);
  } else {
    drawAll();
  }
})();
