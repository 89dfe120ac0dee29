// The Risks page: the 2-D map of successful attacks (a uPlot scatter, one series per cluster,
// coloured like the swatches on the cluster cards), and the htmx swap of a refused Adopt or
// Dismiss, whose 400 answer carries the card again with the error message.
(function () {
  "use strict";

  // The colours live in risks.css only (.swatch.c0 ... .c9, .other, .noise); read them there.
  function colourOf(name) {
    var probe = document.createElement("span");
    probe.className = "swatch " + (typeof name === "number" ? "c" + name : name);
    probe.hidden = true;
    document.body.appendChild(probe);
    var colour = getComputedStyle(probe).backgroundColor;
    probe.remove();
    return colour;
  }

  function drawMap() {
    var el = document.getElementById("risk-map");
    var source = document.getElementById("risk-map-data");
    if (!el || !source || typeof uPlot === "undefined") { return; }
    var data = JSON.parse(source.textContent);
    if (!data.series.length) { el.textContent = "No attacks to map."; return; }
    var series = [{}];
    var columns = [null];
    data.series.forEach(function (s) {
      var colour = colourOf(s.colour);
      var grey = typeof s.colour !== "number";
      series.push({
        label: s.label.length > 40 ? s.label.slice(0, 39) + "\u2026" : s.label,
        facets: [{ scale: "x", auto: true }, { scale: "y", auto: true }],
        stroke: colour, fill: colour,
        paths: uPlot.paths.points(),
        points: { show: true, size: grey ? 4 : 6, width: 0, fill: colour, stroke: colour },
      });
      columns.push([s.x, s.y]);
    });
    var opts = {
      mode: 2,
      width: Math.max(el.clientWidth, 300),
      height: 360,
      legend: { show: true, live: false },
      cursor: { show: false },
      scales: { x: { time: false, range: [-1.05, 1.05] }, y: { range: [-1.05, 1.05] } },
      axes: [{ values: function () { return []; }, size: 8 },
             { values: function () { return []; }, size: 8 }],
      series: series,
    };
    new uPlot(opts, columns, el);
  }

  // A refused decision answers 400 with the card and its error: swap it in like a success.
  document.addEventListener("htmx:beforeSwap", function (event) {
    var target = event.detail.target;
    if (event.detail.xhr.status === 400 && target && target.classList &&
        target.classList.contains("risk-card")) {
      event.detail.shouldSwap = true;
      event.detail.isError = false;
    }
  });

  if (document.readyState === "loading") {
    document.addEventListener("DOMContentLoaded", drawMap);
  } else {
    drawMap();
  }
})();
