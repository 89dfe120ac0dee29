// Oversight charts (templates/annotator/oversight.html), drawn with uPlot from the JSON the page
// embeds with json_script:
// - gold accuracy per expert as bars, with the 95% interval as whisker points (charts.js);
// - accuracy against seconds per item per expert: a line from the expert's blind figures (hollow
//   point) to their assisted ones (filled point). Up is more accurate, left is faster, so a line
//   going up-left means the critic helps on both counts.
(function () {
  "use strict";

  var PALETTE = ["#155eef", "#d92d20", "#079455", "#dc6803", "#7839ee", "#0e9384", "#c11574", "#475467"];

  function speedChart(el, rows) {
    if (!rows.length) { el.textContent = "No expert has timed verdicts with a reference label yet."; return; }
    // uPlot's default mode shares one x array: every point's x, sorted, each nudged by a hair so
    // two points at the same time stay two points. Each expert's series is null except at its
    // two points, and spanGaps joins them.
    var points = [];
    rows.forEach(function (row, i) {
      ["blind", "assisted"].forEach(function (mode) {
        if (row[mode]) points.push({ row: i, mode: mode, x: row[mode][0] + points.length * 1e-6, y: row[mode][1] });
      });
    });
    points.sort(function (a, b) { return a.x - b.x; });
    var xs = points.map(function (p) { return p.x; });
    function column(keep) { return points.map(function (p) { return keep(p) ? p.y : null; }); }
    var series = rows.map(function (row, i) {
      var color = PALETTE[i % PALETTE.length];
      return { label: row.expert, stroke: color, width: 2, spanGaps: true, points: { show: false },
               data: column(function (p) { return p.row === i; }) };
    });
    series.push({ label: "blind (no critic)", stroke: "#344054", fill: "#fff", paths: function () { return null; },
                  points: { show: true, size: 9, width: 2, fill: "#fff" }, data: column(function (p) { return p.mode === "blind"; }) });
    series.push({ label: "assisted (critic shown)", stroke: "#344054", paths: function () { return null; },
                  points: { show: true, size: 9, fill: "#344054" }, data: column(function (p) { return p.mode === "assisted"; }) });
    var xMax = Math.max.apply(null, xs.concat([1])) * 1.15;
    var yMin = Math.min.apply(null, points.map(function (p) { return p.y; }).concat([1]));
    var opts = {
      width: Math.max(el.clientWidth, 300),
      height: 260,
      legend: { show: true, live: false },
      scales: { x: { time: false, range: [0, xMax] }, y: { range: [Math.max(0, Math.floor(yMin * 10) / 10 - 0.1), 1] } },
      axes: [{ label: "seconds per item", size: 48 },
             { label: "accuracy", values: function (u, splits) { return splits.map(function (v) { return Math.round(v * 100) + "%"; }); } }],
      series: [{}].concat(series),
    };
    return new uPlot(opts, [xs].concat(series.map(function (s) { return s.data; })), el);
  }

  function draw() {
    var source = document.getElementById("oversight-chart-data");
    if (!source || typeof uPlot === "undefined" || !window.SuperalignCharts) { return; }
    var data = JSON.parse(source.textContent);
    document.querySelectorAll("[data-chart]").forEach(function (el) {
      var name = el.getAttribute("data-chart");
      if (name === "gold") {
        window.SuperalignCharts.rateChart(el, data.gold, { label: "gold accuracy",
          fill: "rgba(7, 148, 85, 0.35)", stroke: "#079455" });
      } else if (name === "speed") {
        speedChart(el, data.speed);
      }
    });
  }

  if (document.readyState === "loading") {
    document.addEventListener("DOMContentLoaded", draw);
  } else {
    draw();
  }
})();
