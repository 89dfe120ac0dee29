// Agreement page charts, drawn with uPlot from the JSON the page embeds with json_script:
// the reliability diagram (accuracy per confidence bin against the diagonal) and the critic's
// learning curve (held-out accuracy and calibration error against the number of expert labels).
// Drawn again when htmx swaps the calibration card in.
(function () {
  "use strict";

  function pct(u, values) { return values.map(function (v) { return Math.round(v * 100) + "%"; }); }

  function reliabilityChart(el, data) {
    // One x axis for both series: the diagonal at 0 and 1, the bins at their mean confidence.
    var xs = [0].concat(data.confidence, [1]);
    var diagonal = xs.slice();
    var accuracy = [null].concat(data.accuracy, [null]);
    return new uPlot({
      width: Math.max(el.clientWidth, 300), height: 260,
      legend: { show: true, live: false },
      scales: { x: { time: false, range: [0, 1] }, y: { range: [0, 1] } },
      axes: [{ label: "critic confidence", values: pct }, { label: "critic right", values: pct }],
      series: [{},
        { label: "perfect calibration", stroke: "#98a2b3", dash: [6, 4], spanGaps: true,
          points: { show: false } },
        { label: "experts agreed", stroke: "#155eef", paths: function () { return null; },
          points: { show: true, size: 9, fill: "#155eef" } }],
    }, [xs, diagonal, accuracy], el);
  }

  function learningChart(el, data) {
    if (!data.labels.length) { return null; }
    return new uPlot({
      width: Math.max(el.clientWidth, 300), height: 260,
      legend: { show: true, live: false },
      scales: { x: { time: false }, y: { range: [0, 1] } },
      axes: [{ label: "expert labels" }, {}],
      series: [{},
        { label: "held-out accuracy", stroke: "#177245", spanGaps: true, points: { show: true, size: 7 } },
        { label: "calibration error (ECE)", stroke: "#b54708", spanGaps: true, points: { show: true, size: 7 } }],
    }, [data.labels, data.accuracy, data.ece], el);
  }

  function draw() {
    var source = document.getElementById("critic-chart-data");
    if (!source || typeof uPlot === "undefined") { return; }
    var data = JSON.parse(source.textContent);
    document.querySelectorAll("#calibration [data-chart]").forEach(function (el) {
      var name = el.getAttribute("data-chart");
      if (name === "reliability" && data.reliability.confidence.length) {
        el.textContent = "";
        reliabilityChart(el, data.reliability);
      } else if (name === "learning" && data.learning.labels.length) {
        el.textContent = "";
        learningChart(el, data.learning);
      }
    });
  }

  document.addEventListener("htmx:afterSettle", draw);
  if (document.readyState === "loading") {
    document.addEventListener("DOMContentLoaded", draw);
  } else {
    draw();
  }
})();
