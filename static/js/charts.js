// Chart helpers shared by the report pages (campaign report, Oversight), drawn with uPlot.
// window.SuperalignCharts.barChart(el, labels, series, yMax): bars over named categories, names
//   cut and tilted when they do not fit;
// window.SuperalignCharts.rateChart(el, data, options): a rate per category as bars, with its
//   95% interval as whisker points (data: {labels, rate, lo, hi}; options: {label, fill, stroke}).
(function () {
  "use strict";

  var CHAR_PX = 7; // about one character of the axis font
  var MAX_CHARS = 22; // longer names are cut with an ellipsis (the tables have them in full)

  function shortLabel(label) {
    return label.length > MAX_CHARS ? label.slice(0, MAX_CHARS - 1) + "\u2026" : label;
  }

  function barChart(el, labels, series, yMax) {
    var xs = labels.map(function (_, i) { return i; });
    var width = Math.max(el.clientWidth, 300);
    labels = labels.map(shortLabel);
    // Tilt the names only when the longest one is wider than its bar's slot, and make room
    // below the axis for the tilted text (sin 45 deg is about 0.71).
    var longest = Math.max.apply(null, labels.map(function (l) { return l.length; }).concat([1]));
    var tilt = longest * CHAR_PX > (width - 60) / Math.max(labels.length, 1) - 6;
    var opts = {
      width: width,
      height: 240,
      legend: { show: true, live: false },
      scales: {
        x: { time: false, range: [-0.5, labels.length - 0.5] },
        y: { range: [0, yMax] },
      },
      axes: [
        { values: function (u, splits) { return splits.map(function (v) { return Number.isInteger(v) ? (labels[v] || "") : ""; }); },
          splits: function () { return xs; }, rotate: tilt ? -45 : 0,
          size: tilt ? 24 + Math.ceil(longest * CHAR_PX * 0.71) : 40 },
        {},
      ],
      series: [{}].concat(series),
    };
    return new uPlot(opts, [xs].concat(series.map(function (s) { return s.data; })), el);
  }

  function rateChart(el, data, options) {
    if (!data.labels.length) { el.textContent = "No data."; return; }
    options = options || {};
    var series = [
      { label: options.label || "rate", data: data.rate, fill: options.fill || "rgba(217, 45, 32, 0.35)",
        stroke: options.stroke || "#d92d20", paths: uPlot.paths.bars({ size: [0.6, 80] }), points: { show: false } },
      { label: "95% CI low", data: data.lo, stroke: "#344054", paths: function () { return null; },
        points: { show: true, size: 6 } },
      { label: "95% CI high", data: data.hi, stroke: "#344054", paths: function () { return null; },
        points: { show: true, size: 6 } },
    ];
    barChart(el, data.labels, series, 1);
  }

  window.SuperalignCharts = { barChart: barChart, rateChart: rateChart };
})();
