// Charts of the learner's safety, drawn with uPlot from the JSON a page embeds with json_script:
// - a label-source study (element with data-source="study-chart-data"): per candidate, attack
//   success as bars with 95% interval whiskers, and over-refusal as bars beside them;
// - the closed loop's rounds (data-source="rounds-chart-data"): attack success and
//   over-refusal of the active learner after each round, as lines with points.
(function () {
  "use strict";

  var MAX_CHARS = 24; // longer names are cut with an ellipsis (the table beside has them in full)

  function shortLabel(label) {
    return label.length > MAX_CHARS ? label.slice(0, MAX_CHARS - 1) + "\u2026" : label;
  }

  function categoryAxis(labels) {
    var xs = labels.map(function (_, i) { return i; });
    return {
      values: function (u, splits) {
        return splits.map(function (v) { return Number.isInteger(v) ? shortLabel(labels[v] || "") : ""; });
      },
      splits: function () { return xs; },
      size: 40,
    };
  }

  function percentAxis() {
    return { values: function (u, splits) { return splits.map(function (v) { return Math.round(v * 100) + "%"; }); } };
  }

  function whiskers(label, data) {
    return { label: label, data: data, stroke: "#344054", paths: function () { return null; },
      points: { show: true, size: 6 } };
  }

  function studyChart(el, data) {
    var xs = data.labels.map(function (_, i) { return i; });
    var series = [
      { label: "attack success", data: data.asr, fill: "rgba(217, 45, 32, 0.35)", stroke: "#d92d20",
        paths: uPlot.paths.bars({ size: [0.35, 60], align: -1 }), points: { show: false } },
      { label: "over-refusal", data: data.over_refusal, fill: "rgba(21, 94, 239, 0.35)", stroke: "#155eef",
        paths: uPlot.paths.bars({ size: [0.35, 60], align: 1 }), points: { show: false } },
      whiskers("attack success 95% CI low", data.asr_lo),
      whiskers("attack success 95% CI high", data.asr_hi),
    ];
    var opts = {
      width: Math.max(el.clientWidth, 320), height: 260,
      legend: { show: true, live: false },
      scales: { x: { time: false, range: [-0.6, data.labels.length - 0.4] }, y: { range: [0, 1] } },
      axes: [categoryAxis(data.labels), percentAxis()],
      series: [{}].concat(series),
    };
    return new uPlot(opts, [xs].concat(series.map(function (s) { return s.data; })), el);
  }

  function roundsChart(el, data) {
    var xs = data.labels.map(function (_, i) { return i; });
    var series = [
      { label: "attack success", data: data.asr, stroke: "#d92d20", width: 2, points: { show: true, size: 7 } },
      { label: "over-refusal", data: data.over_refusal, stroke: "#155eef", width: 2, points: { show: true, size: 7 } },
    ];
    var opts = {
      width: Math.max(el.clientWidth, 320), height: 240,
      legend: { show: true, live: false },
      scales: { x: { time: false, range: [-0.3, Math.max(data.labels.length - 0.7, 0.3)] }, y: { range: [0, 1] } },
      axes: [categoryAxis(data.labels), percentAxis()],
      series: [{}].concat(series),
    };
    return new uPlot(opts, [xs].concat(series.map(function (s) { return s.data; })), el);
  }

  var CHARTS = { "study-chart-data": studyChart, "rounds-chart-data": roundsChart };

  function draw() {
    if (typeof uPlot === "undefined") { return; }
    document.querySelectorAll("[data-source]").forEach(function (el) {
      var name = el.getAttribute("data-source");
      var source = document.getElementById(name);
      if (!CHARTS[name] || !source) { return; }
      var data = JSON.parse(source.textContent);
      if (!data.labels.length) { el.textContent = "No data yet."; return; }
      CHARTS[name](el, data);
    });
  }

  if (document.readyState === "loading") {
    document.addEventListener("DOMContentLoaded", draw);
  } else {
    draw();
  }
})();
