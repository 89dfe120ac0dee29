// Campaign report charts, drawn with uPlot from the JSON the page embeds with json_script.
// Bars for the attack success rate per strategy and per category, with the 95% bootstrap
// interval as whisker points; bars for the critic's verdict counts.
(function () {
  "use strict";

  function barChart(el, labels, series, yMax) {
    var xs = labels.map(function (_, i) { return i; });
    var opts = {
      width: Math.max(el.clientWidth, 300),
      height: 240,
      legend: { show: true },
      scales: {
        x: { time: false, range: [-0.5, labels.length - 0.5] },
        y: { range: [0, yMax] },
      },
      axes: [
        { values: function (u, splits) { return splits.map(function (v) { return Number.isInteger(v) ? (labels[v] || "") : ""; }); },
          splits: function () { return xs; }, rotate: labels.length > 4 ? -30 : 0, size: labels.length > 4 ? 70 : 40 },
        {},
      ],
      series: [{}].concat(series),
    };
    return new uPlot(opts, [xs].concat(series.map(function (s) { return s.data; })), el);
  }

  function rateChart(el, data) {
    if (!data.labels.length) { el.textContent = "No data."; return; }
    var series = [
      { label: "success rate", data: data.rate, fill: "rgba(217, 45, 32, 0.35)", stroke: "#d92d20",
        paths: uPlot.paths.bars({ size: [0.6, 80] }), points: { show: false } },
      { label: "95% CI low", data: data.lo, stroke: "#344054", paths: function () { return null; },
        points: { show: true, size: 6 } },
      { label: "95% CI high", data: data.hi, stroke: "#344054", paths: function () { return null; },
        points: { show: true, size: 6 } },
    ];
    barChart(el, data.labels, series, 1);
  }

  function countChart(el, data) {
    var max = Math.max.apply(null, data.count.concat([1]));
    barChart(el, data.labels, [{ label: "responses", data: data.count, fill: "rgba(21, 94, 239, 0.35)",
      stroke: "#155eef", paths: uPlot.paths.bars({ size: [0.6, 80] }), points: { show: false } }], max * 1.1);
  }

  function draw() {
    var source = document.getElementById("campaign-report-data");
    if (!source || typeof uPlot === "undefined") { return; }
    var data = JSON.parse(source.textContent);
    document.querySelectorAll("[data-chart]").forEach(function (el) {
      var name = el.getAttribute("data-chart");
      if (name === "verdicts") { countChart(el, data.verdicts); }
      else if (data[name]) { rateChart(el, data[name]); }
    });
  }

  if (document.readyState === "loading") {
    document.addEventListener("DOMContentLoaded", draw);
  } else {
    draw();
  }
})();
