/* The insights page's charts (issue 14): uPlot (vendored, MIT) draws the series that GET /api/insights returns.
   No inline script (the CSP forbids it): the API address is in #insights[data-api]. The tables under each
   chart are the same numbers, rendered by the server, so the page reads without JavaScript too.
   Colours: the Okabe-Ito palette, told apart with colour blindness. Times: the viewer's time zone. */
(function () {
  "use strict";
  var root = document.getElementById("insights");
  if (!root || typeof uPlot === "undefined") return;

  // A saved report (beacons report --format html) carries its figures in #insights-data.
  var embedded = document.getElementById("insights-data");
  // The first visit without ?tz= asks again in the viewer's zone, so day buckets are the viewer's days.
  var zone = (Intl.DateTimeFormat().resolvedOptions().timeZone) || "UTC";
  var params = new URLSearchParams(location.search);
  if (!embedded && !params.get("tz") && zone !== root.dataset.tz) {
    params.set("tz", zone);
    location.replace(location.pathname + "?" + params.toString());
    return;
  }

  var OKABE_ITO = ["#D55E00", "#009E73", "#0072B2", "#E69F00", "#56B4E9", "#CC79A7", "#F0E442", "#000000"];
  var QUEUES = [["support", "#D55E00"], ["advocacy", "#009E73"], ["none", "#999999"]];
  var SENTIMENTS = [["negative", "#D55E00"], ["neutral", "#56B4E9"], ["positive", "#009E73"]];
  var charts = [];

  function times(report) { return report.buckets.map(function (b) { return Date.parse(b) / 1000; }); }

  function width(el) { return Math.max(280, el.clientWidth); }

  function draw(el, report, series, data, yLabel, opts) {
    var bucket = report.bucket;
    var o = {
      width: width(el),
      height: el.clientWidth < 500 ? 220 : 260,
      series: [{ label: bucket === "hour" ? "Hour" : "Day" }].concat(series),
      axes: [
        { label: (bucket === "hour" ? "Hour" : "Day") + " (" + zone + ")" },
        { label: yLabel, size: 60 },
      ],
      scales: { x: { time: true } },
      legend: { live: true },
    };
    if (opts) Object.keys(opts).forEach(function (k) { o[k] = opts[k]; });
    var chart = new uPlot(o, [times(report)].concat(data), el);
    el.dataset.axes = o.axes.map(function (a) { return a.label; }).join(" | ");  // drawn on the canvas
    charts.push([chart, el]);
    return chart;
  }

  function sum(list) { return list.reduce(function (a, v) { return a + (v || 0); }, 0); }

  function volume(el, report) {
    var q = report.volume.queues;
    // Stacked: each queue's bar stands on the ones below it; the legend shows the queue's own count.
    var stacked = [], running = report.buckets.map(function () { return 0; });
    QUEUES.forEach(function (pair) {
      running = running.map(function (v, i) { return v + q[pair[0]][i]; });
      stacked.push(running.slice());
    });
    var bars = uPlot.paths.bars({ size: [0.7, 60] });
    var series = QUEUES.map(function (pair, i) {
      return {
        label: pair[0] === "none" ? "not queued" : pair[0], stroke: pair[1], fill: pair[1], paths: bars,
        value: function (u, v, si, idx) { return idx == null ? "–" : q[pair[0]][idx]; },
      };
    }).reverse();
    draw(el, report, series, stacked.slice().reverse(), "posts");
    el.dataset.total = String(sum(q.support) + sum(q.advocacy) + sum(q.none));
  }

  function sentiment(el, report) {
    var s = report.sentiment;
    var data = SENTIMENTS.map(function (pair) {
      return s.shares.map(function (row) { return row[pair[0]] == null ? null : Math.round(row[pair[0]] * 1000) / 10; });
    });
    var series = SENTIMENTS.map(function (pair) {
      return { label: pair[0] + " %", stroke: pair[1], width: 2, spanGaps: false, points: { show: true } };
    });
    draw(el, report, series, data, "% of classified posts", { scales: { x: { time: true }, y: { range: [0, 100] } } });
    el.dataset.total = String(sum(s.counts.negative) + sum(s.counts.neutral) + sum(s.counts.positive));
  }

  function backlog(el, report) {
    var b = report.response.backlog;
    draw(el, report, [{ label: "open beacons", stroke: "#0072B2", width: 2, points: { show: true } }], [b.open], "open beacons");
    el.dataset.total = String(sum(b.open));
  }

  function sources(el, report) {
    var list = report.sources.series;
    var series = list.map(function (s, i) {
      return { label: s.source, stroke: OKABE_ITO[i % OKABE_ITO.length], width: 2, dash: i >= OKABE_ITO.length ? [6, 4] : undefined };
    });
    draw(el, report, series, list.map(function (s) { return s.counts; }), "posts");
    el.dataset.total = String(sum(list.map(function (s) { return sum(s.counts); })));
  }

  var DRAW = { volume: volume, sentiment: sentiment, backlog: backlog, sources: sources };

  var load = embedded
    ? Promise.resolve(JSON.parse(embedded.textContent))
    : fetch(root.dataset.api, { credentials: "same-origin", headers: { "Accept": "application/json" } })
        .then(function (r) { return r.ok ? r.json() : null; });
  load.then(function (report) {
      if (!report) return;
      document.querySelectorAll("figure[data-chart]").forEach(function (el) {
        var fn = DRAW[el.dataset.chart];
        if (fn && report.buckets) { fn(el, report); el.dataset.drawn = "1"; }
      });
      root.dataset.ready = "1";
    });

  var pending = null;
  window.addEventListener("resize", function () {
    clearTimeout(pending);
    pending = setTimeout(function () {
      charts.forEach(function (pair) { pair[0].setSize({ width: width(pair[1]), height: pair[0].height }); });
    }, 150);
  });
})();
