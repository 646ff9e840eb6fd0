// Small SVG charts drawn from the service's own data: bars and per-minute lines. No library.
const NS = "http://www.w3.org/2000/svg";
export const PALETTE = ["#0b57d0", "#b3261e", "#146c2e", "#8a5300", "#6b3fa0", "#00696b", "#a0316b", "#4a5260"];

function el(name, attrs = {}, text) {
  const e = document.createElementNS(NS, name);
  for (const [k, v] of Object.entries(attrs)) e.setAttribute(k, String(v));
  if (text !== undefined) e.textContent = text;
  return e;
}

/** Horizontal bars, one per item: { label, value }; `fmt` formats the value shown at the bar's end. */
export function barChart(title, items, fmt = String) {
  const rowH = 22;
  const w = 480;
  const labelW = 150;
  const h = Math.max(1, items.length) * rowH + 8;
  const svg = el("svg", { viewBox: `0 0 ${w} ${h}`, role: "img", "aria-label": title });
  svg.append(el("title", {}, title));
  const max = Math.max(1e-12, ...items.map((i) => i.value));
  if (items.length === 0) svg.append(el("text", { x: 4, y: 16 }, "no data yet"));
  items.forEach((it, i) => {
    const y = 4 + i * rowH;
    const bw = Math.max(1, ((w - labelW - 70) * it.value) / max);
    svg.append(el("text", { x: 0, y: y + 14 }, it.label.length > 24 ? it.label.slice(0, 23) + "…" : it.label));
    svg.append(el("rect", { x: labelW, y: y + 3, width: bw, height: rowH - 8, fill: PALETTE[i % PALETTE.length] }));
    svg.append(el("text", { x: labelW + bw + 4, y: y + 14 }, fmt(it.value)));
  });
  return svg;
}

/**
 * Counts per minute over the last `minutes` minutes, one line per series: series is a Map of
 * name → array of Date. The x axis ends at `now`.
 */
export function perMinuteChart(title, series, minutes = 30, now = Date.now()) {
  const w = 480;
  const h = 150;
  const pad = { l: 28, r: 6, t: 8, b: 18 };
  const start = Math.floor(now / 60000) - minutes + 1;
  const counts = new Map();
  let max = 1;
  for (const [name, times] of series) {
    const c = new Array(minutes).fill(0);
    for (const t of times) {
      const i = Math.floor(t.getTime() / 60000) - start;
      if (i >= 0 && i < minutes) c[i]++;
    }
    max = Math.max(max, ...c);
    counts.set(name, c);
  }
  const svg = el("svg", { viewBox: `0 0 ${w} ${h}`, role: "img", "aria-label": title });
  svg.append(el("title", {}, title));
  const x = (i) => pad.l + ((w - pad.l - pad.r) * i) / Math.max(1, minutes - 1);
  const y = (v) => h - pad.b - ((h - pad.t - pad.b) * v) / max;
  svg.append(el("line", { x1: pad.l, y1: y(0), x2: w - pad.r, y2: y(0), stroke: "#7a8290" }));
  svg.append(el("text", { x: 2, y: y(max) + 4 }, String(max)));
  svg.append(el("text", { x: 2, y: y(0) }, "0"));
  svg.append(el("text", { x: pad.l, y: h - 4 }, `-${minutes} min`));
  svg.append(el("text", { x: w - pad.r - 24, y: h - 4 }, "now"));
  let k = 0;
  for (const [, c] of counts) {
    const d = c.map((v, i) => `${i ? "L" : "M"}${x(i).toFixed(1)},${y(v).toFixed(1)}`).join(" ");
    svg.append(el("path", { d, fill: "none", stroke: PALETTE[k++ % PALETTE.length], "stroke-width": 2 }));
  }
  return svg;
}

/** Prometheus text format → [{ name, labels, value }] (comments and malformed lines skipped). */
export function parsePrometheus(text) {
  const out = [];
  const re = /^([a-zA-Z_:][a-zA-Z0-9_:]*)(?:\{(.*)\})?\s+(\S+)/;
  for (const line of text.split("\n")) {
    if (!line || line.startsWith("#")) continue;
    const m = re.exec(line);
    if (!m) continue;
    const labels = {};
    for (const lm of (m[2] ?? "").matchAll(/([a-zA-Z_][a-zA-Z0-9_]*)="((?:[^"\\]|\\.)*)"/g)) labels[lm[1]] = lm[2].replace(/\\(.)/g, "$1");
    out.push({ name: m[1], labels, value: Number(m[3]) });
  }
  return out;
}
