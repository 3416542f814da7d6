// Figures with controls in the static book: every state was computed when the book was built
// (bookkit/explorer.py writes them into the page as JSON); this switches between them.
//
// Each control is a native <input type="range"> or <select> with a <label>, so it works with a
// keyboard and a screen reader. The view is redrawn for the state the controls select, and its
// title (which names every control's option) is announced politely.
(() => {
  "use strict";

  const SVG = "http://www.w3.org/2000/svg";
  const CHART_HEIGHT = 200;
  const MARGIN = { left: 52, right: 8, top: 10, bottom: 26 };
  const MIN_BAR = 11; // CSS pixels per bar that has a text label; narrower charts scroll sideways

  function svgElement(name, attributes, parent) {
    const node = document.createElementNS(SVG, name);
    for (const [key, value] of Object.entries(attributes)) node.setAttribute(key, value);
    if (parent) parent.appendChild(node);
    return node;
  }

  // A tick label: three significant digits at most, no trailing zeros ("0", "0.5", "1", "0.125").
  function number(x) {
    return String(Number(x.toPrecision(3)));
  }

  function bars(panel, title, width) {
    const n = panel.series[0].values.length;
    const labelled = Array.isArray(panel.labels);
    const plotWidth = Math.max(width - MARGIN.left - MARGIN.right, labelled ? n * MIN_BAR : 0);
    const bottom = MARGIN.bottom + (panel.xlabel ? 16 : 0);
    const height = CHART_HEIGHT + MARGIN.top + bottom;
    const svg = svgElement("svg", {
      width: plotWidth + MARGIN.left + MARGIN.right,
      height,
      role: "img",
      "aria-label": title,
      class: "fp-bars",
    });
    const { ymin, ymax } = panel;
    const y = (v) => MARGIN.top + CHART_HEIGHT * (1 - (Math.min(Math.max(v, ymin), ymax) - ymin) / (ymax - ymin || 1));
    const step = plotWidth / n;
    // y axis: three ticks and the axis label
    for (const v of [ymin, (ymin + ymax) / 2, ymax]) {
      svgElement("line", { x1: MARGIN.left - 4, x2: MARGIN.left + plotWidth, y1: y(v), y2: y(v), class: "fp-grid" }, svg);
      const t = svgElement("text", { x: MARGIN.left - 6, y: y(v) + 4, class: "fp-tick", "text-anchor": "end" }, svg);
      t.textContent = number(v);
    }
    panel.series.forEach((series, s) => {
      const narrow = panel.series.length > 1 && s === panel.series.length - 1;
      const barWidth = Math.max(step * (narrow ? 0.5 : 0.85), 0.6);
      series.values.forEach((v, i) => {
        const top = y(Math.max(v, 0));
        const base = y(Math.max(Math.min(v, 0), ymin));
        const kind = panel.series.length > 1 && s === 0 ? "fp-muted" : i === panel.highlight ? "fp-accent" : "fp-main";
        svgElement("rect", {
          x: MARGIN.left + step * i + (step - barWidth) / 2,
          y: Math.min(top, base),
          width: barWidth,
          height: Math.max(Math.abs(base - top), v === 0 ? 0 : 0.5),
          class: kind,
        }, svg);
      });
    });
    const baseline = y(Math.max(ymin, 0));
    svgElement("line", { x1: MARGIN.left, x2: MARGIN.left + plotWidth, y1: baseline, y2: baseline, class: "fp-axis" }, svg);
    const labels = labelled ? panel.labels.map((text, i) => [i, text]) : (panel.ticks || []).map((i) => [i, String(i)]);
    for (const [i, text] of labels) {
      const t = svgElement("text", {
        x: MARGIN.left + step * (i + 0.5),
        y: MARGIN.top + CHART_HEIGHT + 16,
        "text-anchor": "middle",
        class: i === panel.highlight ? "fp-label fp-label-accent" : "fp-label",
      }, svg);
      t.textContent = text;
    }
    if (panel.xlabel) {
      const t = svgElement("text", { x: MARGIN.left + plotWidth / 2, y: height - 4, "text-anchor": "middle", class: "fp-axis-label" }, svg);
      t.textContent = panel.xlabel;
    }
    if (panel.ylabel) {
      const t = svgElement("text", {
        x: 0, y: 0, transform: `translate(12 ${MARGIN.top + CHART_HEIGHT / 2}) rotate(-90)`,
        "text-anchor": "middle", class: "fp-axis-label",
      }, svg);
      t.textContent = panel.ylabel;
    }
    const frame = document.createElement("div");
    frame.className = "fp-chart";
    frame.appendChild(svg);
    // Where a chart too wide for the column opens: at its largest bar, not at its first.
    const main = panel.series[panel.series.length - 1].values;
    const largest = main.reduce((best, v, i) => (Math.abs(v) > Math.abs(main[best]) ? i : best), 0);
    frame.dataset.focus = MARGIN.left + step * (largest + 0.5);
    if (panel.series.length > 1) {
      const legend = document.createElement("p");
      legend.className = "fp-legend";
      panel.series.forEach((series, s) => {
        const item = document.createElement("span");
        item.className = s === 0 ? "fp-key fp-muted" : "fp-key fp-main";
        item.textContent = series.name;
        legend.appendChild(item);
      });
      frame.appendChild(legend);
    }
    return frame;
  }

  // Colours of matplotlib's viridis at 0, 0.25, 0.5, 0.75 and 1, interpolated in between.
  const VIRIDIS = [[68, 1, 84], [59, 82, 139], [33, 145, 140], [94, 201, 98], [253, 231, 37]];

  function viridis(t) {
    const x = Math.min(Math.max(t, 0), 1) * (VIRIDIS.length - 1);
    const i = Math.min(Math.floor(x), VIRIDIS.length - 2);
    const f = x - i;
    const rgb = VIRIDIS[i].map((c, k) => Math.round(c + f * (VIRIDIS[i + 1][k] - c)));
    return `rgb(${rgb.join(",")})`;
  }

  function heatmap(panel, title, width) {
    const rows = panel.rows.length;
    const cols = panel.cols.length;
    const left = 34 + (panel.ylabel ? 16 : 0);
    const top = 6;
    const bar = 56; // the colour bar and its ticks, on the right
    const cell = Math.max(MIN_BAR, Math.min(22, (width - left - bar) / cols));
    const bottom = 22 + (panel.xlabel ? 18 : 0);
    const svg = svgElement("svg", {
      width: left + cols * cell + bar,
      height: top + rows * cell + bottom,
      role: "img",
      "aria-label": title,
      class: "fp-heatmap",
    });
    const scale = (v) => (v - panel.vmin) / (panel.vmax - panel.vmin || 1);
    panel.values.forEach((row, r) => {
      row.forEach((v, c) => {
        svgElement("rect", { x: left + c * cell, y: top + r * cell, width: cell, height: cell, fill: viridis(scale(v)) }, svg);
      });
    });
    if (panel.highlight !== null && panel.highlight !== undefined) {
      svgElement("rect", {
        x: left, y: top + panel.highlight * cell, width: cols * cell, height: cell, class: "fp-outline",
      }, svg);
    }
    panel.rows.forEach((text, r) => {
      const t = svgElement("text", {
        x: left - 4, y: top + (r + 0.5) * cell + 4, "text-anchor": "end",
        class: r === panel.highlight ? "fp-label fp-label-accent" : "fp-label",
      }, svg);
      t.textContent = text;
    });
    panel.cols.forEach((text, c) => {
      const t = svgElement("text", { x: left + (c + 0.5) * cell, y: top + rows * cell + 15, "text-anchor": "middle", class: "fp-label" }, svg);
      t.textContent = text;
    });
    if (panel.xlabel) {
      const t = svgElement("text", {
        x: left + (cols * cell) / 2, y: top + rows * cell + bottom - 3, "text-anchor": "middle", class: "fp-axis-label",
      }, svg);
      t.textContent = panel.xlabel;
    }
    if (panel.ylabel) {
      const t = svgElement("text", {
        x: 0, y: 0, transform: `translate(11 ${top + (rows * cell) / 2}) rotate(-90)`, "text-anchor": "middle", class: "fp-axis-label",
      }, svg);
      t.textContent = panel.ylabel;
    }
    // the colour bar: a vertical gradient from vmax (top) to vmin (bottom)
    const id = `fp-gradient-${Math.random().toString(36).slice(2)}`;
    const gradient = svgElement("linearGradient", { id, x1: 0, y1: 1, x2: 0, y2: 0 }, svgElement("defs", {}, svg));
    for (let k = 0; k <= 8; k++) svgElement("stop", { offset: k / 8, "stop-color": viridis(k / 8) }, gradient);
    const x0 = left + cols * cell + 10;
    const h = rows * cell;
    svgElement("rect", { x: x0, y: top, width: 10, height: h, fill: `url(#${id})` }, svg);
    for (const v of [panel.vmin, (panel.vmin + panel.vmax) / 2, panel.vmax]) {
      const t = svgElement("text", { x: x0 + 14, y: top + h * (1 - scale(v)) + 4, class: "fp-tick" }, svg);
      t.textContent = number(v);
    }
    const frame = document.createElement("div");
    frame.className = "fp-chart";
    frame.appendChild(svg);
    if (panel.colorbar) {
      const note = document.createElement("p");
      note.className = "fp-legend";
      note.textContent = `Colour: ${panel.colorbar}, from ${number(panel.vmin)} (dark purple) to ${number(panel.vmax)} (yellow).`;
      frame.appendChild(note);
    }
    return frame;
  }

  function hydrate(root) {
    const data = JSON.parse(root.querySelector("script.fp-data").textContent);
    const title = root.querySelector(".fp-title");
    title.setAttribute("aria-live", "polite");
    const noscript = root.querySelector(".fp-noscript");
    if (noscript) noscript.remove();

    const form = document.createElement("form");
    form.className = "fp-controls";
    form.addEventListener("submit", (event) => event.preventDefault());
    const index = data.controls.map((c) => c.index);
    const inputs = data.controls.map((control, k) => {
      const id = `${root.id}-${control.name}`;
      const row = document.createElement("div");
      row.className = "fp-control";
      const label = document.createElement("label");
      label.htmlFor = id;
      label.textContent = control.label;
      row.appendChild(label);
      let input;
      if (control.kind === "slider") {
        input = document.createElement("input");
        Object.assign(input, { type: "range", min: 0, max: control.options.length - 1, step: 1, value: control.index });
        const shown = document.createElement("output");
        shown.htmlFor = id;
        row.append(input, shown);
        input.addEventListener("input", () => select(k, Number(input.value)));
        input.showOption = (i) => {
          shown.textContent = control.options[i];
          input.setAttribute("aria-valuetext", control.options[i]);
        };
      } else {
        input = document.createElement("select");
        control.options.forEach((text, i) => input.add(new Option(text, String(i), false, i === control.index)));
        row.appendChild(input);
        input.addEventListener("change", () => select(k, Number(input.value)));
        input.showOption = () => {};
      }
      input.id = id;
      input.showOption(control.index);
      form.appendChild(row);
      return input;
    });
    const view = document.createElement("div");
    view.className = "fp-view";
    root.insertBefore(form, title);
    root.appendChild(view);

    function draw() {
      const key = index.join(",");
      const state = data.states[key];
      root.dataset.state = key;
      title.textContent = state.title;
      view.replaceChildren();
      const width = view.clientWidth || root.clientWidth || 600;
      state.panels.forEach((entry, p) => {
        // a panel's number in the pool, or [number, highlight] (bookkit.Explorer)
        const [ref, highlight] = Array.isArray(entry) ? entry : [entry, undefined];
        const panel = { ...data.shared[p], ...data.pool[ref] };
        if (Array.isArray(entry)) panel.highlight = highlight;
        if (panel.kind === "bars") {
          view.appendChild(bars(panel, state.title, width));
        } else if (panel.kind === "heatmap") {
          view.appendChild(heatmap(panel, state.title, width));
        } else {
          const box = document.createElement("div");
          box.className = "fp-html";
          box.innerHTML = panel.html;
          view.appendChild(box);
        }
      });
      view.querySelectorAll(".fp-chart").forEach((chart) => {
        const svg = chart.querySelector("svg");
        const scrolls = svg.width.baseVal.value > chart.clientWidth + 1;
        chart.classList.toggle("fp-scrolls", scrolls);
        if (scrolls) {
          if (chart.dataset.focus) chart.scrollLeft = Number(chart.dataset.focus) - chart.clientWidth / 2;
          chart.tabIndex = 0;
          chart.setAttribute("role", "region");
          chart.setAttribute("aria-label", `${state.title} (scroll sideways for more)`);
        }
      });
    }

    function select(k, i) {
      index[k] = i;
      inputs[k].showOption(i);
      draw();
    }

    draw();
    let width = view.clientWidth;
    new ResizeObserver(() => {
      if (view.clientWidth !== width) {
        width = view.clientWidth;
        draw();
      }
    }).observe(view);
  }

  function start() {
    document.querySelectorAll(".fp-explorer").forEach((root) => {
      try {
        hydrate(root);
      } catch (error) {
        root.classList.add("fp-broken");
        throw error;
      }
    });
  }

  if (document.readyState === "loading") document.addEventListener("DOMContentLoaded", start);
  else start();
})();
